"""LED status display, drawn on the real sense_emu emulator's matrix (headless)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from whc.columns import DEFAULT_SENSOR_GROUPS
from whc.sampling.backends import open_backend
from whc.sampling.led import StatusDisplay, number_frame, unit_number

pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")


@pytest.fixture
def sense() -> Iterator[Any]:
    """The emulator's SenseHat, matrix cleared before and after."""
    backend = open_backend("emulator", DEFAULT_SENSOR_GROUPS)
    sense = backend.sense
    sense.clear()
    yield sense
    sense.clear()
    sense.low_light = False
    backend.close()


def colour(pixel: list[int]) -> str:
    """Name of an emulator pixel (RGB565 rounds 255 down to 248/252)."""
    r, g, b = pixel
    if r == g == b == 0:
        return "off"
    if r > 128 and g > 128 and b > 128:
        return "white"
    if r > 128 and g < 64 and b < 64:
        return "red"
    if g > 128 and r < 64 and b < 64:
        return "green"
    return f"other{pixel}"


def names(sense: Any) -> list[str]:
    return [colour(p) for p in sense.get_pixels()]


def only(index: int, name: str) -> list[str]:
    frame = ["off"] * 64
    frame[index] = name
    return frame


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "LED matrix did not reach the expected state in time"
        time.sleep(0.01)


RED_X = ["red" if row == col or row + col == 7 else "off" for row in range(8) for col in range(8)]


def test_unit_number_then_status_then_fatal(sense):
    expected_number = ["white" if p != (0, 0, 0) else "off" for p in number_frame("03")]
    display = StatusDisplay(sense, "rpi03", intro_seconds=0.5)
    wait_for(lambda: names(sense) == expected_number)
    display.set_ok()  # drawn once the number has been shown
    wait_for(lambda: names(sense) == only(63, "green"))
    display.set_trouble()
    wait_for(lambda: names(sense) == only(63, "red"))
    display.set_ok()
    wait_for(lambda: names(sense) == only(63, "green"))
    display.show_fatal()
    wait_for(lambda: names(sense) == RED_X)
    display.set_ok()  # fatal is final
    display.close()
    assert names(sense) == RED_X  # the X stays after close


def test_close_clears_the_matrix(sense):
    display = StatusDisplay(sense, "pi7", intro_seconds=0.2)
    display.set_trouble()
    wait_for(lambda: names(sense) == only(63, "red"))
    display.close()
    assert names(sense) == ["off"] * 64


def test_close_interrupts_the_intro(sense):
    display = StatusDisplay(sense, "rpi42", intro_seconds=30)
    wait_for(lambda: "white" in names(sense))
    start = time.monotonic()
    display.close()
    assert time.monotonic() - start < 1.0
    assert names(sense) == ["off"] * 64


def test_long_and_missing_unit_numbers(sense):
    display = StatusDisplay(sense, "rpi123", intro_seconds=0.3)  # three digits: one letter at a time
    wait_for(lambda: "white" in names(sense))
    display.set_ok()
    wait_for(lambda: names(sense) == only(63, "green"))
    display.close()
    display = StatusDisplay(sense, "gateway", intro_seconds=5)  # no number: straight to the status
    display.set_trouble()
    wait_for(lambda: names(sense) == only(63, "red"), timeout=1.0)
    display.close()


def test_low_light(sense):
    display = StatusDisplay(sense, "rpi01", low_light=True, intro_seconds=0.1)
    wait_for(lambda: sense.low_light)
    display.close()
    assert not sense.low_light


def test_disabled_display_does_nothing(sense):
    sense.clear(0, 0, 255)
    before = sense.get_pixels()
    for display in (StatusDisplay(sense, "rpi03", enabled=False), StatusDisplay(None, "rpi03")):
        assert not display.enabled
        display.set_ok()
        display.set_trouble()
        display.show_fatal()
        display.close()
    assert sense.get_pixels() == before


def test_led_error_disables_the_display(sense, monkeypatch, caplog):
    caplog.set_level(logging.WARNING)

    def broken(*args):
        raise OSError("framebuffer gone")

    monkeypatch.setattr(sense, "set_pixels", broken)
    display = StatusDisplay(sense, "rpi03", intro_seconds=0.1)
    wait_for(lambda: not display.enabled)
    display.set_ok()  # still harmless
    display.show_fatal()
    display.close()
    assert [r.getMessage() for r in caplog.records if "LED" in r.getMessage()] == [
        "LED matrix disabled after an error: framebuffer gone"
    ]


@pytest.mark.parametrize(
    "sh_id, digits", [("rpi03", "03"), ("pi7", "7"), ("rpi123", "123"), ("gateway", ""), ("rpi03b", "")]
)
def test_unit_number(sh_id, digits):
    assert unit_number(sh_id) == digits

"""Status on the Sense HAT's 8x8 LED matrix, drawn from a daemon thread.

The sender's main loop (``whc.sender.Sender.run``) only calls the non-blocking ``set_ok()``,
``set_trouble()`` and ``show_fatal()``; the thread draws the changes. At start it shows the unit's
number (the digits at the end of its sh_id), then one status pixel in the bottom-right corner:
green while acks arrive, red while disconnected or spooling.
``show_fatal()`` draws a red X, which stays after ``close()``; otherwise ``close()`` clears the matrix.
Any error from the LED hardware is logged once and turns the display off; it never stops the sender.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

log = logging.getLogger(__name__)

Pixel = tuple[int, int, int]
OFF: Pixel = (0, 0, 0)
GREEN: Pixel = (0, 255, 0)
RED: Pixel = (255, 0, 0)
WHITE: Pixel = (255, 255, 255)
STATUS_XY = (7, 7)  # bottom-right

# 3x5 digits, so that two fit side by side on the matrix in one frame
_FONT = {
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "001", "010", "010"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
}

_OK, _TROUBLE, _FATAL = "ok", "trouble", "fatal"


def unit_number(sh_id: str) -> str:
    """The digits at the end of a unit name ("rpi03" -> "03"), or "" if there are none."""
    match = re.search(r"\d+$", sh_id)
    return match.group() if match else ""


def number_frame(digits: str, colour: Pixel = WHITE) -> list[Pixel]:
    """64 pixels showing one or two digits in the 3x5 font (rows 1-5, clear of the status pixel)."""
    if not 1 <= len(digits) <= 2 or not digits.isdigit():
        raise ValueError(f"one or two digits expected, not {digits!r}")
    frame = [OFF] * 64
    left = 2 if len(digits) == 1 else 0
    for n, digit in enumerate(digits):
        for row, bits in enumerate(_FONT[digit]):
            for col, bit in enumerate(bits):
                if bit == "1":
                    frame[(row + 1) * 8 + left + 4 * n + col] = colour
    return frame


def status_frame(state: str | None) -> list[Pixel]:
    """64 pixels for a state: the status pixel (ok/trouble), a red X (fatal), or all off."""
    frame = [OFF] * 64
    if state == _FATAL:
        for i in range(8):
            frame[i * 8 + i] = frame[i * 8 + 7 - i] = RED
    elif state in (_OK, _TROUBLE):
        x, y = STATUS_XY
        frame[y * 8 + x] = GREEN if state == _OK else RED
    return frame


class StatusDisplay:
    """Drives the LED matrix of ``sense`` (a SenseHat object; None disables the display)."""

    def __init__(
        self,
        sense: Any,
        sh_id: str,
        *,
        enabled: bool = True,
        low_light: bool = False,
        intro_seconds: float = 1.5,
    ) -> None:
        self._sense = sense
        self._digits = unit_number(sh_id)
        self._low_light = low_light
        self._intro_seconds = intro_seconds
        self._cond = threading.Condition()
        self._state: str | None = None
        self._closing = False
        self._thread: threading.Thread | None = None
        self.enabled = bool(enabled and sense is not None)
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="whc-led", daemon=True)
            self._thread.start()

    def set_ok(self) -> None:
        """Acks arrive: green status pixel."""
        self._set(_OK)

    def set_trouble(self) -> None:
        """Disconnected, spooling, or the spool failing: red status pixel."""
        self._set(_TROUBLE)

    def show_fatal(self) -> None:
        """The sender is giving up: a red X, kept after close()."""
        self._set(_FATAL)

    def close(self, timeout: float = 3.0) -> None:
        """Draw the last state, then clear the matrix (unless fatal) and stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> StatusDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _set(self, state: str) -> None:
        with self._cond:
            if self._state != _FATAL and not self._closing:
                self._state = state
                self._cond.notify()

    def _pause(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True if close() was called meanwhile."""
        with self._cond:
            return self._cond.wait_for(lambda: self._closing, seconds)

    def _run(self) -> None:
        sense = self._sense
        try:
            if self._low_light:
                sense.low_light = True
            self._intro(sense)
            shown: object = object()  # nothing drawn yet
            while True:
                with self._cond:
                    while self._state == shown and not self._closing:
                        self._cond.wait()
                    state, closing = self._state, self._closing
                if state != shown:
                    sense.set_pixels(status_frame(state))
                    shown = state
                if closing:
                    break
            if state != _FATAL:
                sense.clear()
                if self._low_light:
                    sense.low_light = False
        except Exception as e:  # LED hardware gone or broken: never take the sender down
            self.enabled = False
            log.warning("LED matrix disabled after an error: %s", e)

    def _intro(self, sense: Any) -> None:
        """Show the unit number for about intro_seconds (interrupted by close())."""
        digits = self._digits
        if not digits:
            return
        if len(digits) <= 2:
            sense.set_pixels(number_frame(digits))
            self._pause(self._intro_seconds)
            return
        for digit in digits:
            sense.show_letter(digit)
            if self._pause(self._intro_seconds / len(digits)):
                return

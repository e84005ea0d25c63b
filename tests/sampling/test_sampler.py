"""The sampling loop on the emulator: schedule, flat-out fallback, reading shape."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from harness import wait_for

from whc.sampling.backends import SensorBackend, open_backend
from whc.sampling.sampler import Sampler


@pytest.fixture
def backend() -> Iterator[SensorBackend]:
    with open_backend("emulator", ["orientation", "gyroscope", "accelerometer"]) as opened:
        yield opened


def test_reading_has_time_unit_and_rounded_values(backend: SensorBackend) -> None:
    reading = Sampler(backend, "rpi09", 0, lambda _: None).sample()
    assert list(reading)[:2] == ["time", "sh_id"] and reading["sh_id"] == "rpi09"
    assert reading["time"].endswith("Z") and len(reading["time"]) == 27
    assert all(float(f"{v:.7g}") == v for v in reading.values() if isinstance(v, float)), "7 significant digits"


def test_interval_shorter_than_a_read_warns_once_and_runs_flat_out(backend, caplog) -> None:
    got: list[dict] = []
    sampler = Sampler(backend, "rpi09", 0.001, got.append)
    with caplog.at_level(logging.WARNING):
        sampler.start()
        wait_for(lambda: len(got) >= 30, 10, what="30 readings")
        sampler.stop()
    warnings = [r for r in caplog.records if "takes longer than interval" in r.message]
    assert len(warnings) == 1
    assert sampler.late >= 1 and sampler.failure is None

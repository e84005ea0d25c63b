"""The IMU fusion is fed at the IMU's own rate whatever ``interval`` is (on the emulator, about 60 Hz)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import wait_for

from whc.sampling.backends import SensorBackend, open_backend
from whc.sampling.sampler import Sampler

pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")


@pytest.fixture
def backend() -> Iterator[SensorBackend]:
    with open_backend("emulator", ["orientation", "gyroscope", "accelerometer"]) as opened:
        yield opened


def test_interval_0_takes_every_imu_sample_once(backend: SensorBackend) -> None:
    stamps: list[int] = []
    # deliver runs on the sampler thread right after the read, so imu_timestamp is that reading's sample
    sampler = Sampler(backend, "rpi01", 0, lambda reading: stamps.append(backend.imu_timestamp))
    sampler.start()
    wait_for(lambda: len(stamps) >= 120, 20, what="120 readings")
    sampler.stop()
    counts = backend.counters()
    assert sampler.failure is None
    assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False)), "no IMU sample twice"
    assert counts["imu_skipped"] == 0, "none skipped while the sender keeps up"
    assert counts["imu_failures"] == 0 and counts["imu_repeated"] == 0


def test_interval_1_still_feeds_the_fusion(backend: SensorBackend) -> None:
    got: list[dict] = []
    sampler = Sampler(backend, "rpi01", 1.0, got.append)
    sampler.start()
    wait_for(lambda: len(got) >= 2, 10, what="two readings")
    sampler.stop()
    counts = backend.counters()
    print(f"\n2 readings at interval 1 s; the IMU reader saw {counts['imu_samples']} samples")
    assert counts["imu_samples"] > 20 * len(got), counts  # the emulator makes about 60 a second
    assert counts["imu_repeated"] == 0 and counts["imu_failures"] == 0


STATS = re.compile(r"readings/s=([\d.]+) read=\d+ imu_samples/s=([\d.]+)")


def test_sender_at_interval_1_polls_the_imu_at_its_rate(server_factory, sender_factory, tmp_path: Path) -> None:
    server = server_factory(unit="rpi01", interval=1, stats_interval=2)
    sender = sender_factory(server.config_path).start()
    lines = wait_for(lambda: STATS.findall(sender.log_text())[1:], 30, what="a full stats period")
    assert sender.stop() == 0
    readings_rate, imu_rate = map(float, lines[0])
    print(f"\nsender at interval 1: readings/s={readings_rate} imu_samples/s={imu_rate}")
    assert readings_rate <= 1.5
    assert imu_rate > 10 * readings_rate  # the emulator makes about 60 samples a second
    stats = sender.log_text().rsplit("stats:", 1)[1]
    assert "imu_repeated=0" in stats and "imu_failures=0" in stats

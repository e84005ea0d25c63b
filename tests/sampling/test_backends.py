"""Sensor back ends, against the real sense_emu emulator running headless (no mocks of the library)."""

from __future__ import annotations

import glob
import json
import logging
import math
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from whc.columns import (
    COLOUR,
    CPU_TEMP,
    DEFAULT_SENSOR_GROUPS,
    ENVIRONMENT,
    IMU_GROUPS,
    SENSOR_COLUMNS,
    SENSOR_GROUPS,
    columns_of,
)
from whc.exc import ConfigError, SensorError
from whc.sampling.backends import SensorBackend, columns_for, open_backend
from whc.sampling.backends import _emu_sim as emu_sim
from whc.sampling.backends.sensehat_api import SenseHatAPIBackend
from whc.sampling.backends.sensor_maths import tilt_compensated_heading

# sense_emu's SenseHat() uses a Pillow call deprecated in Pillow 13
pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]
IMU_COLUMNS = columns_for(IMU_GROUPS)
DEFAULT_COLUMNS = ("ori_r", "ori_p", "ori_y", "gyr_x", "gyr_y", "gyr_z", "acc_x", "acc_y", "acc_z")


@pytest.fixture
def open_emulator() -> Iterator[Callable[..., SensorBackend]]:
    """Open emulator back ends; all are closed at the end, and this process then no longer drives."""
    opened: list[SensorBackend] = []

    def _open(groups=DEFAULT_SENSOR_GROUPS) -> SensorBackend:
        backend = open_backend("emulator", groups)
        opened.append(backend)
        return backend

    yield _open
    for backend in opened:
        backend.close()
    assert not emu_sim.driving()


def wait_until(condition: Callable[[], object], timeout: float = 3.0) -> object:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.01)
    return result


def reads_per_second(backend: SensorBackend, seconds: float) -> float:
    count, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        backend.read()
        count += 1
    return count / (time.monotonic() - start)


def test_default_groups_give_the_nine_imu_columns_as_floats(open_emulator):
    backend = open_emulator()
    assert backend.name == "emulator"
    assert backend.groups == frozenset(DEFAULT_SENSOR_GROUPS)
    reading = backend.read()
    assert tuple(reading) == DEFAULT_COLUMNS
    assert all(isinstance(v, float) for v in reading.values()), reading
    assert all(0.0 <= reading[c] < 360.0 for c in ("ori_r", "ori_p", "ori_y"))
    assert abs(reading["acc_z"] - 1.0) < 0.5  # lying flat: about 1 g on z
    assert backend.imu_failures == 0


def test_all_groups_give_every_sensor_column(open_emulator, caplog):
    caplog.set_level(logging.WARNING)
    backend = open_emulator(SENSOR_GROUPS)
    readings = [backend.read() for _ in range(3)]
    for reading in readings:
        assert tuple(reading) == SENSOR_COLUMNS
        for name in IMU_COLUMNS + columns_of(ENVIRONMENT):
            assert isinstance(reading[name], float), (name, reading)
        assert 0.0 <= reading["heading"] < 360.0
        assert 0 < reading["humidity"] < 100 and 900 < reading["pressure"] < 1100
        assert -10 < reading["temp_h"] < 50 and -10 < reading["temp_p"] < 50
        assert all(reading[c] is None for c in columns_of(COLOUR))  # the emulator has no colour sensor
    # the missing colour sensor is reported once, not per reading
    assert sum("no colour sensor" in r.getMessage() for r in caplog.records) == 1
    if Path("/sys/class/thermal/thermal_zone0/temp").exists():
        assert isinstance(readings[0]["cpu_temp"], float)
    else:
        assert readings[0]["cpu_temp"] is None
        assert sum("CPU temperature" in r.getMessage() for r in caplog.records) == 1


def test_cpu_temp_is_read_in_degrees(open_emulator, tmp_path):
    backend = open_emulator([CPU_TEMP])
    assert isinstance(backend, SenseHatAPIBackend)
    (tmp_path / "temp").write_text("48312\n")
    backend.cpu_temp_path = str(tmp_path / "temp")
    assert backend.read() == {"cpu_temp": pytest.approx(48.312)}


@pytest.mark.parametrize("groups", [DEFAULT_SENSOR_GROUPS, SENSOR_GROUPS], ids=["default", "all"])
def test_each_read_carries_one_whole_imu_sample(open_emulator, monkeypatch, groups):
    """Every IMU field of a read comes from the one RTIMULib sample whose timestamp the read records."""
    backend = open_emulator(groups)
    imu = backend.sense._imu
    seen: dict[int, dict] = {}
    original = imu.getIMUData

    def recording_get_imu_data():
        data = original()
        seen[data["timestamp"]] = data
        return data

    monkeypatch.setattr(imu, "getIMUData", recording_get_imu_data)
    wait_until(lambda: len(seen) >= 2)
    for n in range(30):  # (the first takes the newest sample: those kept from before the recording are behind it)
        reading = backend.read(follow=n % 2 == 1)
        data = seen[backend.imu_timestamp]
        assert reading["acc_x"] == data["accel"][0] and reading["acc_z"] == data["accel"][2]
        assert reading["gyr_y"] == data["gyro"][1]
        assert reading["ori_p"] == pytest.approx(math.degrees(data["fusionPose"][1]) % 360)
        if "mag_x" in reading:
            assert reading["mag_z"] == data["compass"][2]
    assert backend.imu_failures == 0


def test_follow_takes_every_imu_sample_once(open_emulator):
    backend = open_emulator()
    stamps = []
    start = time.monotonic()
    for _ in range(60):
        backend.read(follow=True)
        stamps.append(backend.imu_timestamp)
    rate = len(stamps) / (time.monotonic() - start)
    counts = backend.counters()
    print(f"\nemulator: {rate:.1f} reads/s following the IMU; counters {counts}")
    assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False)), "no sample twice, in order"
    assert counts["imu_skipped"] == 0 and counts["imu_failures"] == 0
    assert counts["imu_samples"] >= 60


def test_the_imu_is_polled_between_reads(open_emulator):
    """The fusion is fed at the IMU's rate even if nobody reads: samples are counted without any read()."""
    backend = open_emulator()
    before = backend.counters()["imu_samples"]
    wait_until(lambda: backend.counters()["imu_samples"] >= before + 20)
    backend.read()
    assert backend.imu_failures == 0


def test_readings_change_over_time(open_emulator):
    backend = open_emulator(SENSOR_GROUPS)
    first = backend.read()
    moving = ("gyr_x", "gyr_y", "gyr_z", "acc_x", "acc_y", "acc_z", "mag_x", "mag_y", "mag_z")
    wait_until(lambda: any(backend.read()[c] != first[c] for c in moving))
    wait_until(lambda: backend.read()["humidity"] != first["humidity"])


def test_failed_imu_read_gives_none_and_counts(open_emulator, monkeypatch, caplog):
    backend = open_emulator(SENSOR_GROUPS)
    assert backend.read()["acc_z"] is not None
    imu = backend.sense._imu
    monkeypatch.setattr(imu, "IMURead", lambda: False)  # no new sample any more
    reading = wait_until(lambda: (r := backend.read())["acc_z"] is None and r)
    assert all(reading[c] is None for c in IMU_COLUMNS), reading  # no repeat of the last values
    assert isinstance(reading["pressure"], float)  # other groups unaffected
    failures = backend.imu_failures
    assert failures >= 1
    assert backend.read(follow=True)["acc_z"] is None and backend.imu_failures == failures + 1

    def broken_bus():
        raise OSError("I2C bus error")

    monkeypatch.setattr(imu, "IMURead", broken_bus)
    wait_until(lambda: any("I2C bus error" in r.getMessage() for r in caplog.records))
    assert backend.read()["acc_z"] is None
    monkeypatch.undo()
    wait_until(lambda: backend.read()["acc_z"] is not None)
    counted = backend.imu_failures
    assert backend.read()["acc_z"] is not None and backend.imu_failures == counted


class PublicOnly:
    """A real SenseHat with its private members hidden: a library without the internals we use."""

    def __init__(self, sense) -> None:
        self._wrapped = sense

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._wrapped, name)


def test_public_api_fallback(open_emulator, caplog):
    sense = open_emulator([ENVIRONMENT]).sense  # no IMU groups: no IMU reader thread shares this RTIMU object
    backend = SenseHatAPIBackend(PublicOnly(sense), frozenset(SENSOR_GROUPS) - {CPU_TEMP, COLOUR})
    reading = backend.read()
    assert all(isinstance(reading[c], float) for c in IMU_COLUMNS + columns_of(ENVIRONMENT)), str(reading)
    assert any("internals" in r.getMessage() for r in caplog.records)


def emulated_imu(roll: float, pitch: float, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """Accelerometer and magnetometer as sense_emu's IMUServer computes them for an orientation."""
    x, y, z = np.deg2rad((roll, pitch, yaw))
    c1, c2, c3 = np.cos((z, y, x))
    s1, s2, s3 = np.sin((z, y, x))
    rotation = np.array(
        [
            [c1 * c2, c1 * s2 * s3 - c3 * s1, s1 * s3 + c1 * c3 * s2],
            [c2 * s1, c1 * c3 + s1 * s2 * s3, c3 * s1 * s2 - c1 * s3],
            [-s2, c2 * s3, c2 * c3],
        ]
    )
    return rotation.T.dot((0, 0, 1)), rotation.T.dot((33.0, 0, 0))


@pytest.mark.parametrize(
    "roll, pitch, yaw", [(0, 0, 0), (0, 0, 90), (0, 0, 270), (30, -20, 45), (-60, 45, 200), (10, 70, 359)]
)
def test_heading_is_tilt_compensated(roll, pitch, yaw):
    accel, mag = emulated_imu(roll, pitch, yaw)
    heading = tilt_compensated_heading(accel, mag)
    assert heading is not None and 0.0 <= heading < 360.0
    assert math.isclose((heading - yaw + 180) % 360 - 180, 0.0, abs_tol=1e-6)
    assert tilt_compensated_heading((0.0, 0.0, 0.0), mag) is None


def sense_hat_present() -> bool:
    names = glob.glob("/sys/class/graphics/fb*/name")
    return any(Path(p).read_text().strip() == "RPi-Sense FB" for p in names)


@pytest.mark.skipif(sense_hat_present(), reason="this machine has a Sense HAT")
def test_sense_hat_without_hat_names_the_fix():
    with pytest.raises(SensorError) as info:
        open_backend("sense_hat", DEFAULT_SENSOR_GROUPS)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("no Sense HAT found")
    assert "--emulator" in message and "scripts/demo.sh" in message, "points at the project's venv, not system pip"


def test_sense_hat_library_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "sense_hat", None)  # makes `import sense_hat` fail
    with pytest.raises(
        SensorError, match=r"^no Sense HAT found \(sense_hat library not importable.*--emulator"
    ):
        open_backend("sense_hat", DEFAULT_SENSOR_GROUPS)


def test_emulator_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "sense_emu", None)
    with pytest.raises(SensorError, match=r"^sense-emu is not installed in this Python: bash scripts/demo.sh sets up "
                                          r"\.venv with it; then run \.venv/bin/python launch_sender.py --emulator$"):
        open_backend("emulator", DEFAULT_SENSOR_GROUPS)


@pytest.mark.parametrize("name", ["fake", "", "Emulator", "sense-hat"])
def test_unknown_backend_is_a_config_error(name):
    with pytest.raises(ConfigError, match="unknown sensor back end"):
        open_backend(name, DEFAULT_SENSOR_GROUPS)


def test_unknown_group_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown sensor group.*wind"):
        open_backend("emulator", ["orientation", "wind"])


def test_closed_backend(open_emulator):
    backend = open_emulator()
    backend.close()
    backend.close()  # idempotent
    assert backend.sense is None
    with pytest.raises(SensorError):
        backend.read()


SECOND_SENDER = """
import json, sys, time
from whc.sampling.backends import open_backend, _emu_sim
backend = open_backend("emulator", ["accelerometer", "environment"])
print(json.dumps({"ready": True, "driving": _emu_sim.driving()}), flush=True)
reads = []
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    reads.append((time.monotonic(), backend.read()))
ok_late = [r["acc_z"] is not None for t, r in reads if t > end - 0.5]
wrong = [r for t, r in reads if (r["acc_z"] is not None and abs(r["acc_z"] - 1.0) > 0.2)
         or None in (r["temp_h"], r["temp_p"], r["humidity"], r["pressure"])
         or abs(r["temp_p"] - 20) > 5 or abs(r["pressure"] - 1013) > 5]
print(json.dumps({"driving": _emu_sim.driving(), "reads": len(reads), "ok_late": sum(ok_late),
                  "late": len(ok_late), "wrong": wrong, "imu_failures": backend.imu_failures}), flush=True)
backend.close()
"""


def test_second_sender_shares_the_simulation_and_takes_over(open_emulator):
    backend = open_emulator()
    if not emu_sim.driving():
        pytest.skip("another process (GUI or sender) drives the emulator")
    proc = subprocess.Popen(
        [sys.executable, "-c", SECOND_SENDER, "3.0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    try:
        start = json.loads(proc.stdout.readline())
        assert start == {"ready": True, "driving": False}  # we drive; it only reads
        assert emu_sim.driver_pid() is not None
        backend.close()  # we stop driving: the other sender must take over within its watch interval
        assert not emu_sim.driving()
        end = json.loads(proc.stdout.readline())
        assert end["driving"] is True
        assert end["late"] > 10 and end["ok_late"] == end["late"], end
        # never wrong values: no ramp from 0 g nor a jump in temp_p
        assert end["wrong"] == []
        # its first failed IMU read (no new sample) makes it take over at once: at most a read or two lost
        print(f"\nIMU reads lost in the handover: {end['imu_failures']} of {end['reads']}")
        assert end["imu_failures"] <= 3, end
    finally:
        proc.wait(10)
    assert proc.returncode == 0
    assert emu_sim.driver_pid() is None  # it released the lock on close

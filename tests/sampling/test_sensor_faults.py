"""Each sensor fails on its own, forced through the test-only stand-in for the ``sense_hat`` library.

The stand-in (tests/standin) is put on the import path by these tests only; the ``sense_hat`` back end then
runs its real code against it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import PYTHON, ROOT, wait_for, write_config

from whc.columns import COLOUR, ENVIRONMENT, IMU_GROUPS, SENSOR_GROUPS, columns_of
from whc.exc import SensorError
from whc.sampling.backends import SensorBackend, SensorOptions, columns_for, open_backend

STANDIN = ROOT / "tests" / "standin"
IMU_COLUMNS = columns_for(IMU_GROUPS)


@pytest.fixture
def standin(monkeypatch) -> Iterator:
    """The stand-in ``sense_hat`` module, importable for this test only."""
    monkeypatch.syspath_prepend(str(STANDIN))
    for name in [n for n in sys.modules if n == "sense_hat" or n.startswith("sense_hat.")]:
        monkeypatch.delitem(sys.modules, name)
    import sense_hat

    assert Path(sense_hat.__file__).is_relative_to(STANDIN)
    for key in sense_hat.calls:
        sense_hat.calls[key] = 0
    yield sense_hat
    for name in [n for n in sys.modules if n == "sense_hat" or n.startswith("sense_hat.")]:
        del sys.modules[name]


@pytest.fixture
def open_standin(standin, monkeypatch) -> Iterator:
    opened: list[SensorBackend] = []

    def _open(faults: str = "", groups=SENSOR_GROUPS, **options) -> SensorBackend:
        monkeypatch.setenv("WHC_STANDIN_FAULTS", faults)
        backend = open_backend("sense_hat", groups, SensorOptions(**options))
        opened.append(backend)
        return backend

    yield _open
    for backend in opened:
        backend.close()


class FakeClock:
    """A monotonic clock the test moves by hand (it starts at the real one: a guard may have failed already)."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


def test_standin_is_never_loaded_by_default() -> None:
    import importlib.util

    spec = importlib.util.find_spec("sense_hat")
    assert spec is None or not Path(spec.origin or "").is_relative_to(STANDIN)


def test_healthy_standin_fills_every_group_from_one_sample(open_standin, standin) -> None:
    backend = open_standin(groups=[g for g in SENSOR_GROUPS if g != "cpu_temp"])
    reading = backend.read(follow=True)
    sample = standin.imu_sample(backend.imu_timestamp // 10_000)
    assert reading["gyr_x"] == sample["gyro"][0] and reading["acc_y"] == sample["accel"][1]
    assert reading["mag_x"] == sample["compass"][0]
    assert (reading["humidity"], reading["temp_h"], reading["pressure"]) == (45.5, 21.25, 1013.25)
    assert (reading["col_r"], reading["col_c"]) == (1600.0, 9600.0)  # default gain 16
    colour = backend.sense.colour
    assert colour.gain == 16 and colour.integration_cycles == 64


def test_colour_gain_and_integration_come_from_the_config(open_standin, monkeypatch) -> None:
    backend = open_standin(groups=[COLOUR], colour_gain=4, colour_integration_cycles=10)
    assert backend.sense.colour.gain == 4 and backend.sense.colour.integration_cycles == 10
    assert backend.read()["col_g"] == 800.0
    top = open_standin("tcs3400", groups=[COLOUR], colour_gain=60)  # 60 means the top gain: 64 on a TCS3400
    assert top.sense.colour.gain == 64


def test_humidity_init_failure_is_logged_once_and_retried_with_backoff(open_standin, standin, caplog) -> None:
    caplog.set_level(logging.INFO)
    backend = open_standin("humidity_init", groups=["accelerometer", ENVIRONMENT])
    clock = backend.guards["humidity"].clock = FakeClock()
    tries_at: dict[float, int] = {}
    start = clock.now
    for step in range(0, 400):  # 40 s of rows every 0.1 s on the fake clock
        clock.now = start + step / 10
        reading = backend.read()
        assert reading["humidity"] is None and reading["temp_h"] is None
        assert reading["pressure"] == 1013.25 and reading["acc_z"] == 1.0  # other groups unaffected
        tries_at.setdefault(standin.calls["humidity_init"], clock.now)
    tries = standin.calls["humidity_init"]
    # tried at 0 s, then after 2, 4, 8, 16 s: 0, 2, 6, 14, 30 (never per row)
    assert sorted(round(t - start, 1) for t in tries_at.values()) == [0.0, 2.0, 6.0, 14.0, 30.0]
    assert tries == 5
    assert backend.counters()["humidity_failures"] == 5
    lines = [r.getMessage() for r in caplog.records if "humidity" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "Humidity Init Failed" in lines[0] and "UU at 5f" in lines[0] and "i2cdetect -y 1" in lines[0]


def test_humidity_recovers_when_the_sensor_comes_back(open_standin, caplog) -> None:
    backend = open_standin("humidity_init", groups=[ENVIRONMENT])
    clock = backend.guards["humidity"].clock = FakeClock()
    assert backend.read()["humidity"] is None
    backend.sense._humidity._fail = False  # the overlay got fixed
    clock.now += 2.0
    assert backend.read()["humidity"] == 45.5
    assert any("works again after 1 failure" in r.getMessage() for r in caplog.records)


def test_colour_sensor_unreachable_leaves_only_its_columns_empty(open_standin, caplog) -> None:
    backend = open_standin("colour_unreachable", groups=["gyroscope", ENVIRONMENT, COLOUR])
    clock = backend.guards["colour"].clock = FakeClock()
    for _ in range(50):
        reading = backend.read()
        assert all(reading[c] is None for c in columns_of(COLOUR))
        assert reading["gyr_z"] is not None and reading["pressure"] == 1013.25
    clock.now += 2.0
    backend.read()
    assert backend.counters()["colour_failures"] == 2  # at start and once after 2 s, not per row
    (line,) = [r.getMessage() for r in caplog.records if "colour" in r.getMessage()]
    assert "Sensor not present" in line and "v1 Sense HAT has no colour sensor" in line


def test_missing_smbus_is_named(open_standin, caplog) -> None:
    backend = open_standin("no_smbus", groups=[COLOUR])
    assert backend.read() == dict.fromkeys(columns_of(COLOUR))
    (line,) = [r.getMessage() for r in caplog.records if "colour" in r.getMessage()]
    assert "No module named 'smbus'" in line and "sudo apt install python3-smbus" in line
    assert "v1 Sense HAT or emulator" not in line


def test_null_imu_is_refused(open_standin) -> None:
    with pytest.raises(SensorError, match=r"no IMU found \(RTIMULib's null IMU, type 1\).*rows of zeros"):
        open_standin("null_imu", groups=["orientation"])
    open_standin("null_imu", groups=[ENVIRONMENT]).read()  # no IMU wanted: nothing to refuse


def standin_sender(tmp_path: Path, faults: str, *args: str, **settings) -> subprocess.Popen[str]:
    config = write_config(tmp_path, **settings)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(STANDIN), str(ROOT)]), WHC_STANDIN_FAULTS=faults,
               WHC_HAT_LOCK_DIR=str(tmp_path))
    return subprocess.Popen([PYTHON, str(ROOT / "launch_sender.py"), "--config", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)


def test_null_imu_exits_2_with_one_line(tmp_path: Path) -> None:
    for args in (("--once",), ()):
        proc = standin_sender(tmp_path, "null_imu", *args, port=9, unit="rpi03")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, err
        (line,) = err.strip().splitlines()
        assert line.startswith("sender: sense_hat: no IMU found") and "IMUType=6" in line
        assert out == ""


def test_sender_with_a_failing_humidity_sensor_keeps_sending(server_factory, tmp_path: Path) -> None:
    server = server_factory(unit="rpi03", interval=0.02, sensors=["accelerometer", ENVIRONMENT],
                            fsync_interval=0.1)
    proc = standin_sender(tmp_path, "humidity_init", port=server.port, unit="rpi03", interval=0.02,
                          sensors=["accelerometer", ENVIRONMENT], fsync_interval=0.1)
    try:
        rows = wait_for(lambda: len(server.rows()) >= 200 and server.rows(), 30, what="200 rows")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert all(r["humidity"] == "" and r["temp_h"] == "" for r in rows)
    assert all(r["pressure"] == "1013.25" and r["acc_z"] == "1.0" for r in rows)
    tries = err.count("stand-in RTIMULib: HTS221 humidity init failed")
    logged = [line for line in err.splitlines() if "humidity sensor (HTS221) failed" in line]
    print(f"\n{len(rows)} rows, {tries} humidity init tries")
    assert len(logged) == 1 and "UU at 5f" in logged[0]
    assert 1 <= tries <= 4, "retried with backoff (2, 4, 8 s...), never per row"


def test_a_silent_imu_is_polled_less_and_less_often_then_resumes(open_standin, monkeypatch) -> None:
    backend = open_standin(groups=["accelerometer"])
    imu = backend.sense._imu
    polls: list[float] = []

    def silent() -> bool:  # a dead bus: RTIMULib's read fails (and prints an error) on every poll
        polls.append(time.monotonic())
        return False

    monkeypatch.setattr(imu, "IMURead", silent)
    wait_for(lambda: polls and polls[-1] - polls[0] > 3.0, 15, what="3 s of a silent IMU")
    recent = [t for t in polls if t > polls[-1] - 1.0]
    print(f"\n{len(polls)} polls in {polls[-1] - polls[0]:.1f} s of silence, {len(recent)} in the last second")
    assert len(recent) <= 3, "not every 3 ms any more"
    assert backend.read()["acc_z"] is None
    monkeypatch.undo()
    wait_for(lambda: backend.read()["acc_z"] == 1.0, 5, what="the IMU back")

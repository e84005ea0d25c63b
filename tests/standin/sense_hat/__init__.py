"""Test-only stand-in for the ``sense_hat`` library: the API whc uses, with faults chosen by WHC_STANDIN_FAULTS.

The IMU makes a new sample every 10 ms (100 Hz) and every field of sample n is derived from n, so a test can
tell which sample a row came from and whether all its fields came from the same one.
"""

from __future__ import annotations

import os
import sys
import time

from .colour import ColourSensor

POLL_MS = 3
RATE_HZ = 100
calls = {"humidity_init": 0, "pressure_init": 0, "imu_read": 0}  # counts, for tests that run in-process


def faults() -> set[str]:
    return {f for f in os.environ.get("WHC_STANDIN_FAULTS", "").split(",") if f}


def imu_sample(n: int) -> dict:
    """Sample number ``n`` as RTIMULib's getIMUData() shapes it."""
    f = (n % 1000) / 1000.0
    return {
        "timestamp": n * (1_000_000 // RATE_HZ),
        "fusionPoseValid": True, "fusionPose": (f, -f, 2 * f),
        "fusionQPoseValid": True, "fusionQPose": (1.0, 0.0, 0.0, 0.0),
        "gyroValid": True, "gyro": (f, 0.5 * f, -f),
        "accelValid": True, "accel": (f / 10, -f / 10, 1.0),
        "compassValid": True, "compass": (20.0 + f, -f, 40.0),
        "pressureValid": False, "pressure": 0.0, "temperatureValid": False, "temperature": 0.0,
        "humidityValid": False, "humidity": 0.0,
    }


class _IMU:
    def __init__(self, null: bool) -> None:
        self._null = null
        self._last = -1
        self._data = imu_sample(0)

    def IMUType(self) -> int:  # noqa: N802 (RTIMULib's names)
        return 1 if self._null else 6

    def IMUName(self) -> str:  # noqa: N802
        return "Null IMU" if self._null else "LSM9DS1"

    def IMUInit(self) -> bool:  # noqa: N802
        return True  # the null IMU's init succeeds too

    def IMUGetPollInterval(self) -> int:  # noqa: N802
        return POLL_MS

    def IMURead(self) -> bool:  # noqa: N802
        calls["imu_read"] += 1
        n = int(time.monotonic() * RATE_HZ)
        if n == self._last:
            return False
        self._last = n
        self._data = {k: (0.0, 0.0, 0.0) if self._null and isinstance(v, tuple) else v
                      for k, v in imu_sample(n).items()}
        return True

    def getIMUData(self) -> dict:  # noqa: N802
        return self._data

    def setCompassEnable(self, value: bool) -> None:  # noqa: N802
        pass

    setGyroEnable = setAccelEnable = setCompassEnable  # noqa: N815


class _Humidity:
    def __init__(self, fail: bool) -> None:
        self._fail = fail

    def humidityInit(self) -> bool:  # noqa: N802
        calls["humidity_init"] += 1
        if self._fail:
            print("stand-in RTIMULib: HTS221 humidity init failed", file=sys.stderr, flush=True)
        return not self._fail

    def humidityRead(self) -> tuple:  # noqa: N802
        return (1, 45.5, 1, 21.25)


class _Pressure:
    def pressureInit(self) -> bool:  # noqa: N802
        calls["pressure_init"] += 1
        return True

    def pressureRead(self) -> tuple:  # noqa: N802
        return (1, 1013.25, 1, 20.5)


class SenseHat:
    """The parts of sense_hat.SenseHat whc uses, with the library's lazy inits."""

    def __init__(self) -> None:
        chosen = faults()
        self._imu = _IMU(null="null_imu" in chosen)
        self._imu_init = False
        self._humidity = _Humidity(fail="humidity_init" in chosen)
        self._humidity_init = False
        self._pressure = _Pressure()
        self._pressure_init = False
        self.low_light = False
        self.pixels = [(0, 0, 0)] * 64
        try:  # like the library: the colour sensor is made at start and any error is swallowed
            self._colour = ColourSensor()
        except Exception:
            pass

    def _init_imu(self) -> None:
        if not self._imu_init:
            self._imu_init = self._imu.IMUInit()
            if not self._imu_init:
                raise OSError("IMU Init Failed")

    def set_imu_config(self, compass_enabled: bool, gyro_enabled: bool, accel_enabled: bool) -> None:
        self._init_imu()

    def _read_imu(self) -> bool:
        self._init_imu()
        return self._imu.IMURead()

    def _init_humidity(self) -> None:
        if not self._humidity_init:
            self._humidity_init = self._humidity.humidityInit()
            if not self._humidity_init:
                raise OSError("Humidity Init Failed")

    def _init_pressure(self) -> None:
        if not self._pressure_init:
            self._pressure_init = self._pressure.pressureInit()
            if not self._pressure_init:
                raise OSError("Pressure Init Failed")

    def has_colour_sensor(self) -> bool:
        return hasattr(self, "_colour")

    @property
    def colour(self) -> ColourSensor | None:
        return getattr(self, "_colour", None)

    def set_pixels(self, pixels: list) -> None:
        self.pixels = list(pixels)

    def clear(self, *colour: object) -> None:
        self.pixels = [(0, 0, 0)] * 64

    def show_letter(self, s: str, *args: object) -> None:
        pass

"""What both Sense HAT back ends share: ``sense_hat`` and ``sense_emu`` expose the same SenseHat API.

The subclasses only create the SenseHat object (and, for the emulator, make sure something simulates it).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

from whc.columns import (
    ACCELEROMETER,
    COLOUR,
    CPU_TEMP,
    ENVIRONMENT,
    GYROSCOPE,
    IMU_GROUPS,
    MAGNETOMETER,
    ORIENTATION,
)
from whc.exc import SensorError
from whc.sampling.backends import SensorBackend, columns_for

log = logging.getLogger(__name__)

CPU_TEMP_PATH = "/sys/class/thermal/thermal_zone0/temp"

ImuSample = dict[str, Any]  # RTIMULib's getIMUData() dict: fusionPose, gyro, accel, compass + *Valid flags


def read_imu_sample(sense: Any) -> ImuSample | None:
    """Read the IMU once and return that whole sample, or None if the read failed.

    The library has no public call for this: get_orientation(), get_gyroscope_raw(), get_accelerometer_raw()
    and get_compass_raw() each do their own ``_read_imu()`` (which polls and sleeps the IMU poll interval),
    so calling them in turn mixes several instants in one row and caps the rate (about 20 rows/s on the
    emulator instead of 60), and they repeat the last values when a read fails. So this does the one
    ``SenseHat._read_imu()`` the library would do (up to 3 polls, sleeping the poll interval after each,
    as the library does) and takes all of that sample from ``RTIMU.getIMUData()``.
    """
    if not sense._read_imu():
        return None
    return sense._imu.getIMUData()


def read_imu_public(sense: Any) -> ImuSample:
    """Fallback when those internals are missing: four public reads (four instants, about 4x slower).

    The library repeats its last values when a read fails, so failures are invisible on this path.
    """

    def xyz(d: dict[str, float]) -> tuple[float, float, float]:
        return (d["x"], d["y"], d["z"])

    pose = sense.get_orientation_radians()
    return {
        "fusionPose": (pose["roll"], pose["pitch"], pose["yaw"]),
        "fusionPoseValid": True,
        "gyro": xyz(sense.get_gyroscope_raw()),
        "gyroValid": True,
        "accel": xyz(sense.get_accelerometer_raw()),
        "accelValid": True,
        "compass": xyz(sense.get_compass_raw()),
        "compassValid": True,
    }


def imu_reader(sense: Any) -> Callable[[Any], ImuSample | None]:
    """read_imu_sample if the library has the internals it needs, else read_imu_public."""
    if callable(getattr(sense, "_read_imu", None)) and callable(
        getattr(getattr(sense, "_imu", None), "getIMUData", None)
    ):
        return read_imu_sample
    log.warning("SenseHat internals _read_imu/_imu.getIMUData missing: IMU fields come from 4 separate reads")
    return read_imu_public


def wrap360(degrees: float) -> float:
    """Degrees mapped to [0, 360), as the library's get_orientation_degrees() does."""
    d = degrees % 360.0
    return 0.0 if d >= 360.0 else d


def tilt_compensated_heading(accel: Iterable[float], mag: Iterable[float]) -> float | None:
    """Compass heading in degrees [0, 360) from one sample's accelerometer (g) and magnetometer.

    Same maths as RTIMULib's RTFusion::calculatePose (with declination 0): roll and pitch from gravity,
    the magnetometer rotated back to level, heading = -atan2(y, x). It uses only raw data of this sample,
    unlike the fused yaw (ori_y), which the gyroscope smooths. None if there is no gravity vector.
    """
    ax, ay, az = accel
    mx, my, mz = mag
    if ax == 0.0 and ay == 0.0 and az == 0.0:
        return None
    roll = math.atan2(ay, az)
    pitch = -math.atan2(ax, math.hypot(ay, az))
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    level_x = mx * cp + (my * sr + mz * cr) * sp
    level_y = my * cr - mz * sr
    return wrap360(math.degrees(-math.atan2(level_y, level_x)))


def _num(value: Any, valid: Any = True) -> float | None:
    """float(value), or None if not valid or not finite."""
    if not valid or value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class SenseHatAPIBackend(SensorBackend):
    """A back end over any object with the SenseHat API."""

    name = "sense_hat_api"

    def __init__(self, sense: Any, groups: frozenset[str]) -> None:
        self._sense: Any = sense
        self.groups = frozenset(groups)
        self.columns = columns_for(self.groups)
        self.imu_failures = 0
        self.cpu_temp_path = CPU_TEMP_PATH
        self._warned: set[str] = set()
        self._closed = False
        self._use_imu = bool(self.groups & IMU_GROUPS)
        self._imu_read = imu_reader(sense) if self._use_imu else None
        self._colour: Any = None
        try:
            if self._use_imu:
                # compass, gyro and accel all on, once: get_compass()/get_gyroscope()/get_accelerometer()
                # would reconfigure the fusion (get_compass switches gyro and accel off); we never call them.
                sense.set_imu_config(True, True, True)
            if COLOUR in self.groups:
                self._colour = _colour_sensor(sense)
                if self._colour is None:
                    log.warning("no colour sensor (v1 Sense HAT or emulator): col_* columns stay empty")
        except SensorError:
            raise
        except Exception as e:  # the libraries raise OSError, but also others from the C extension
            raise SensorError(f"{self.name}: Sense HAT sensors unusable ({_one_line(e)})") from e

    @property
    def sense(self) -> Any:
        return None if self._closed else self._sense

    def close(self) -> None:
        self._closed = True

    def read(self) -> dict[str, float | None]:
        if self._closed:
            raise SensorError(f"{self.name} back end is closed")
        out: dict[str, float | None] = dict.fromkeys(self.columns)
        if self._use_imu:
            self._read_imu(out)
        if ENVIRONMENT in self.groups:
            self._read_environment(out)
        if CPU_TEMP in self.groups:
            out["cpu_temp"] = self._read_cpu_temp()
        if self._colour is not None:
            self._read_colour(out)
        return out

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def _recover_imu(self) -> bool:
        """Called after a failed IMU read: True if the source was repaired and one retry makes sense."""
        return False

    def _read_imu_once(self) -> ImuSample | None:
        assert self._imu_read is not None
        try:
            return self._imu_read(self._sense)
        except Exception as e:  # a bus error must cost one row's IMU fields, never the sender
            self._warn_once("imu", "IMU read failed (%s); IMU fields left empty", _one_line(e))
            return None

    def _read_imu(self, out: dict[str, float | None]) -> None:
        sample = self._read_imu_once()
        if sample is None and self._recover_imu():
            sample = self._read_imu_once()
        if sample is None:
            self.imu_failures += 1  # fields stay None: never repeat the last values as the library does
            return
        groups = self.groups
        accel = sample["accel"] if sample.get("accelValid") else None
        if ORIENTATION in groups and sample.get("fusionPoseValid"):
            roll, pitch, yaw = sample["fusionPose"]
            out["ori_r"] = wrap360(math.degrees(roll))
            out["ori_p"] = wrap360(math.degrees(pitch))
            out["ori_y"] = wrap360(math.degrees(yaw))
        if GYROSCOPE in groups and sample.get("gyroValid"):
            out["gyr_x"], out["gyr_y"], out["gyr_z"] = (_num(v) for v in sample["gyro"])
        if ACCELEROMETER in groups and accel is not None:
            out["acc_x"], out["acc_y"], out["acc_z"] = (_num(v) for v in accel)
        if MAGNETOMETER in groups and sample.get("compassValid"):
            mag = sample["compass"]
            out["mag_x"], out["mag_y"], out["mag_z"] = (_num(v) for v in mag)
            if accel is not None:
                out["heading"] = tilt_compensated_heading(accel, mag)

    def _read_environment(self, out: dict[str, float | None]) -> None:
        try:
            out["humidity"], out["temp_h"] = _read_humidity(self._sense)
        except Exception as e:
            self._warn_once("humidity", "humidity sensor read failed (%s); fields left empty", _one_line(e))
        try:
            out["pressure"], out["temp_p"] = _read_pressure(self._sense)
        except Exception as e:
            self._warn_once("pressure", "pressure sensor read failed (%s); fields left empty", _one_line(e))

    def _read_cpu_temp(self) -> float | None:
        try:
            with open(self.cpu_temp_path, "rb") as f:
                return int(f.read()) / 1000.0
        except (OSError, ValueError) as e:
            self._warn_once("cpu_temp", "no CPU temperature (%s); cpu_temp left empty", _one_line(e))
            return None

    def _read_colour(self, out: dict[str, float | None]) -> None:
        try:
            red, green, blue, clear = self._colour.colour_raw
        except Exception as e:
            self._warn_once("colour", "colour sensor read failed (%s); fields left empty", _one_line(e))
            return
        out["col_r"], out["col_g"], out["col_b"], out["col_c"] = (_num(v) for v in (red, green, blue, clear))


def _read_humidity(sense: Any) -> tuple[float | None, float | None]:
    """(humidity %RH, temperature degC) from one read of the HTS221, None where the chip says invalid."""
    if callable(getattr(sense, "_init_humidity", None)) and hasattr(sense, "_humidity"):
        sense._init_humidity()  # the library's lazy init; raises OSError if the chip is absent
        h_valid, humidity, t_valid, temp = sense._humidity.humidityRead()
        return _num(humidity, h_valid), _num(temp, t_valid)
    return _num(sense.get_humidity()), _num(sense.get_temperature_from_humidity())


def _read_pressure(sense: Any) -> tuple[float | None, float | None]:
    """(pressure hPa, temperature degC) from one read of the LPS25H, None where the chip says invalid."""
    if callable(getattr(sense, "_init_pressure", None)) and hasattr(sense, "_pressure"):
        sense._init_pressure()
        p_valid, pressure, t_valid, temp = sense._pressure.pressureRead()
        return _num(pressure, p_valid), _num(temp, t_valid)
    return _num(sense.get_pressure()), _num(sense.get_temperature_from_pressure())


def _colour_sensor(sense: Any) -> Any:
    """The v2 board's colour sensor object, or None (v1 board, emulator)."""
    has = getattr(sense, "has_colour_sensor", None)
    try:
        return sense.colour if callable(has) and has() else None
    except Exception:
        return None


def _one_line(error: BaseException | str) -> str:
    """An exception as one line of text."""
    text = error if isinstance(error, str) else (str(error) or type(error).__name__)
    return " ".join(text.split())

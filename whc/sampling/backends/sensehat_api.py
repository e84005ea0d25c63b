"""What both Sense HAT back ends share: ``sense_hat`` and ``sense_emu`` expose the same SenseHat API.

The subclasses only create the SenseHat object (and, for the emulator, make sure something simulates it).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from ...columns import (
    ACCELEROMETER,
    COLOUR,
    CPU_TEMP,
    ENVIRONMENT,
    GYROSCOPE,
    IMU_GROUPS,
    MAGNETOMETER,
    ORIENTATION,
)
from ...exc import NoColourSensor, SensorError, one_line
from . import SensorBackend, SensorOptions, columns_for
from ._imu_feed import ImuFeed
from ._retry import SensorGuard
from .sensehat_reads import colour_sensor, read_humidity, read_imu_public, read_pressure
from .sensor_maths import finite, tilt_compensated_heading, wrap360

log = logging.getLogger(__name__)

CPU_TEMP_PATH = "/sys/class/thermal/thermal_zone0/temp"

STALE_AFTER = 0.5  # seconds without a new IMU sample before rows get empty IMU fields
NO_IMU_TYPES = {0: "no IMU object", 1: "RTIMULib's null IMU"}  # RTIMU_TYPE_AUTODISCOVER / RTIMU_TYPE_NULL
NO_IMU_FIX = (
    "check the HAT is seated, I2C is enabled (raspi-config), this user may open /dev/i2c-1 (group i2c) and "
    "~/.config/sense_hat/RTIMULib.ini says IMUType=6 (delete it to detect the IMU again)"
)
HUMIDITY_FIX = (
    "if `i2cdetect -y 1` shows UU at 5f, a kernel driver holds the HTS221 (kernels 6.9-6.12 without the fixed "
    "rpi-sense overlay, raspberrypi/linux#6781): sudo apt update && sudo apt full-upgrade and reboot, or "
    "echo 'blacklist hts221_i2c' | sudo tee /etc/modprobe.d/whc-hts221.conf and reboot; otherwise check that "
    "I2C is enabled and this user is in group i2c"
)
PRESSURE_FIX = "check that I2C is enabled, this user is in group i2c and `i2cdetect -y 1` shows 5c"
TOP_GAINS = (60, 64)  # the colour sensor's highest gain: 60 on the TCS34725, 64 on the TCS3400


def _colour_fix(error: BaseException) -> str:
    if isinstance(error, ImportError):
        return "the smbus module cannot be imported: sudo apt install python3-smbus"
    if isinstance(error, NoColourSensor):
        return ""
    return ("a v1 Sense HAT has no colour sensor (then drop 'colour' from sensors); on a v2 board "
            "`i2cdetect -y 1` shows it at 29 or 39")


class SenseHatAPIBackend(SensorBackend):
    """A back end over any object with the SenseHat API."""

    name = "sense_hat_api"

    def __init__(self, sense: Any, groups: frozenset[str], options: SensorOptions | None = None) -> None:
        self._sense: Any = sense
        self.groups = frozenset(groups)
        self.columns = columns_for(self.groups)
        self.options = options or SensorOptions()
        self.imu_failures = 0
        self.imu_skipped = 0  # with follow: samples no read took (the sender fell behind)
        self.imu_repeated = 0  # without follow: reads that took the same sample as the read before
        self.imu_timestamp: int | None = None  # RTIMULib timestamp (us) of the sample the last read took
        self.cpu_temp_path = CPU_TEMP_PATH
        self._closed = False
        self._last_seq = 0
        self._use_imu = bool(self.groups & IMU_GROUPS)
        self._feed: ImuFeed | None = None
        self._colour: Any = None
        self.guards = {
            "humidity": SensorGuard("humidity sensor (HTS221)", lambda e: HUMIDITY_FIX),
            "pressure": SensorGuard("pressure sensor (LPS25H)", lambda e: PRESSURE_FIX),
            "colour": SensorGuard("colour sensor", _colour_fix),
            "cpu_temp": SensorGuard(f"CPU temperature ({self.cpu_temp_path})", lambda e: ""),
        }
        if self._use_imu:
            self._open_imu(sense)
        if COLOUR in self.groups:
            self._open_colour()

    def _open_imu(self, sense: Any) -> None:
        """Refuse a missing IMU, switch compass, gyro and accel on once, and start feeding the fusion."""
        imu = getattr(sense, "_imu", None)
        try:
            imu_type = imu.IMUType() if callable(getattr(imu, "IMUType", None)) else None
            if imu_type in NO_IMU_TYPES:
                raise SensorError(f"{self.name}: no IMU found ({NO_IMU_TYPES[imu_type]}, type {imu_type}): "
                                  f"refusing to write rows of zeros; {NO_IMU_FIX}")
            # get_compass()/get_gyroscope()/get_accelerometer() would reconfigure the fusion (get_compass
            # switches gyro and accel off); we never call them.
            sense.set_imu_config(True, True, True)
        except SensorError:
            raise
        except Exception as e:  # the libraries raise OSError('IMU Init Failed'), others from the C extension
            raise SensorError(f"{self.name}: IMU unusable ({one_line(e)}); {NO_IMU_FIX}") from e
        if callable(getattr(imu, "IMURead", None)) and callable(getattr(imu, "getIMUData", None)):
            self._feed = ImuFeed(imu, on_stall=self._recover_imu).start()
        else:
            log.warning("SenseHat internals _imu.IMURead/getIMUData missing: IMU fields come from 4 separate "
                        "reads per row, and the fusion is only fed when a row is read")

    def _open_colour(self) -> None:
        """Find the colour sensor and set its gain and integration time; on failure its guard retries later."""
        guard = self.guards["colour"]
        try:
            colour = colour_sensor(self._sense) or self._make_colour_sensor()
            gain, cycles = self.options.colour_gain, self.options.colour_integration_cycles
            chip_gains = getattr(getattr(colour, "interface", None), "GAIN_VALUES", ())
            if gain in TOP_GAINS and chip_gains and gain not in chip_gains:
                gain = max(chip_gains)  # 60 and 64 both mean this chip's top gain
            colour.gain = gain
            colour.integration_cycles = cycles
        except Exception as e:
            guard.failed(e, permanent=isinstance(e, NoColourSensor))
            return
        guard.ok()
        self._colour = colour
        log.info("colour sensor: gain %s, %d integration cycles (%.0f ms, at most %d counts)", colour.gain,
                 cycles, 1000 * getattr(colour, "integration_time", 0.0), getattr(colour, "max_raw", 0))

    def _make_colour_sensor(self) -> Any:
        """The sensor, when the library did not make one at start (it swallows why): raises the reason."""
        raise NoColourSensor(f"{self.name} has no colour sensor")

    @property
    def sense(self) -> Any:
        return None if self._closed else self._sense

    def close(self) -> None:
        self._closed = True
        if self._feed is not None:
            self._feed.stop()

    def counters(self) -> dict[str, int]:
        counts = {
            "imu_samples": self._feed.samples if self._feed is not None else 0,
            "imu_skipped": self.imu_skipped,
            "imu_repeated": self.imu_repeated,
            "imu_failures": self.imu_failures,
        }
        counts.update({f"{name}_failures": guard.failures for name, guard in self.guards.items()})
        return counts

    def read(self, follow: bool = False) -> dict[str, float | None]:
        if self._closed:
            raise SensorError(f"{self.name} back end is closed")
        out: dict[str, float | None] = dict.fromkeys(self.columns)
        if self._use_imu:
            self._read_imu(out, follow)
        if ENVIRONMENT in self.groups:
            self._guarded("humidity", lambda: read_humidity(self._sense), ("humidity", "temp_h"), out)
            self._guarded("pressure", lambda: read_pressure(self._sense), ("pressure", "temp_p"), out)
        if CPU_TEMP in self.groups:
            self._guarded("cpu_temp", self._read_cpu_temp, ("cpu_temp",), out)
        if COLOUR in self.groups:
            if self._colour is None and self.guards["colour"].ready():
                self._open_colour()
            if self._colour is not None:
                self._guarded("colour", self._read_colour, ("col_r", "col_g", "col_b", "col_c"), out)
        return out

    def _guarded(self, name: str, read: Callable[[], tuple], columns: tuple[str, ...], out: dict) -> None:
        """Fill ``columns`` from ``read()`` unless that sensor is waiting out a failure; a failure starts one."""
        guard = self.guards[name]
        if not guard.ready():
            return
        try:
            values = read()
        except Exception as e:  # an I2C error costs this sensor's columns, never the other sensors' nor the sender
            guard.failed(e)
            return
        guard.ok()
        out.update(zip(columns, values, strict=True))

    def _recover_imu(self) -> bool:
        """Called while no new IMU sample comes: True if the source was repaired."""
        return False

    def _take_imu_sample(self, follow: bool) -> dict[str, Any] | None:
        """One whole IMU sample for this row (see ``ImuFeed``), or None if there is no fresh one."""
        feed = self._feed
        if feed is None:  # the library lacks the internals: one (slow, unfed) read per row
            try:
                return read_imu_public(self._sense)
            except Exception as e:
                log.debug("IMU read failed: %s", e)
                return None
        if follow:
            sample = feed.after(self._last_seq, STALE_AFTER)
            if sample is not None and self._last_seq:
                self.imu_skipped += sample.seq - self._last_seq - 1
        else:
            sample = feed.newest(STALE_AFTER if not self._last_seq else 0.0)
            if sample is not None and time.monotonic() - sample.monotonic > STALE_AFTER:
                sample = None  # the IMU stopped answering: never repeat old values as fresh
            if sample is not None and sample.seq == self._last_seq:
                self.imu_repeated += 1
        if sample is None:
            return None
        self._last_seq = sample.seq
        self.imu_timestamp = sample.data.get("timestamp")
        return sample.data

    def _read_imu(self, out: dict[str, float | None], follow: bool) -> None:
        sample = self._take_imu_sample(follow)
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
            out["gyr_x"], out["gyr_y"], out["gyr_z"] = (finite(v) for v in sample["gyro"])
        if ACCELEROMETER in groups and accel is not None:
            out["acc_x"], out["acc_y"], out["acc_z"] = (finite(v) for v in accel)
        if MAGNETOMETER in groups and sample.get("compassValid"):
            mag = sample["compass"]
            out["mag_x"], out["mag_y"], out["mag_z"] = (finite(v) for v in mag)
            if accel is not None:
                out["heading"] = tilt_compensated_heading(accel, mag)

    def _read_cpu_temp(self) -> tuple[float]:
        with open(self.cpu_temp_path, "rb") as f:
            return (int(f.read()) / 1000.0,)

    def _read_colour(self) -> tuple[float | None, ...]:
        return tuple(finite(v) for v in self._colour.colour_raw)


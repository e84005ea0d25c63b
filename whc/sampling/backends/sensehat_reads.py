"""Single reads through the SenseHat API (humidity, pressure, the IMU's public fallback); finding the colour sensor."""

from __future__ import annotations

from typing import Any

from .sensor_maths import finite

ImuData = dict[str, Any]  # RTIMULib's getIMUData() dict: fusionPose, gyro, accel, compass + *Valid flags


def read_imu_public(sense: Any) -> ImuData:
    """Fallback when the library lacks the internals ImuFeed needs (``SenseHat._imu`` with IMURead and
    getIMUData): four public reads per row, at four instants, and nothing feeds the fusion between rows.

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


def read_humidity(sense: Any) -> tuple[float | None, float | None]:
    """(humidity %RH, temperature degC) from one read of the HTS221, None where the chip says invalid."""
    if callable(getattr(sense, "_init_humidity", None)) and hasattr(sense, "_humidity"):
        sense._init_humidity()  # the library's lazy init; raises OSError if the chip is absent
        h_valid, humidity, t_valid, temp = sense._humidity.humidityRead()
        return finite(humidity, h_valid), finite(temp, t_valid)
    return finite(sense.get_humidity()), finite(sense.get_temperature_from_humidity())


def read_pressure(sense: Any) -> tuple[float | None, float | None]:
    """(pressure hPa, temperature degC) from one read of the LPS25H, None where the chip says invalid."""
    if callable(getattr(sense, "_init_pressure", None)) and hasattr(sense, "_pressure"):
        sense._init_pressure()
        p_valid, pressure, t_valid, temp = sense._pressure.pressureRead()
        return finite(pressure, p_valid), finite(temp, t_valid)
    return finite(sense.get_pressure()), finite(sense.get_temperature_from_pressure())


def colour_sensor(sense: Any) -> Any:
    """The colour sensor object the library made at start (v2 boards), or None."""
    has = getattr(sense, "has_colour_sensor", None)
    try:
        return sense.colour if callable(has) and has() else None
    except Exception:
        return None

"""The CSV columns: names, order, units and the sensor group each belongs to.

The first eleven columns are the user's original header and never move.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One CSV column."""

    name: str
    unit: str
    meaning: str
    group: str | None = None  # sensor group that produces it; None for bookkeeping columns


# Sensor groups a sender can be configured to read.
ORIENTATION = "orientation"
GYROSCOPE = "gyroscope"
ACCELEROMETER = "accelerometer"
MAGNETOMETER = "magnetometer"
ENVIRONMENT = "environment"
CPU_TEMP = "cpu_temp"
COLOUR = "colour"

SENSOR_GROUPS = (ORIENTATION, GYROSCOPE, ACCELEROMETER, MAGNETOMETER, ENVIRONMENT, CPU_TEMP, COLOUR)
DEFAULT_SENSOR_GROUPS = (ORIENTATION, GYROSCOPE, ACCELEROMETER)
IMU_GROUPS = frozenset({ORIENTATION, GYROSCOPE, ACCELEROMETER, MAGNETOMETER})

COLUMNS: tuple[Column, ...] = (
    Column("time", "ISO 8601 UTC", "when the reading was sampled (server receive time if the sender gave none)"),
    Column("sh_id", "", "unit name of the sending Pi"),
    Column("ori_r", "degrees", "orientation roll", ORIENTATION),
    Column("ori_p", "degrees", "orientation pitch", ORIENTATION),
    Column("ori_y", "degrees", "orientation yaw", ORIENTATION),
    Column("gyr_x", "rad/s", "raw gyroscope x", GYROSCOPE),
    Column("gyr_y", "rad/s", "raw gyroscope y", GYROSCOPE),
    Column("gyr_z", "rad/s", "raw gyroscope z", GYROSCOPE),
    Column("acc_x", "g", "raw accelerometer x", ACCELEROMETER),
    Column("acc_y", "g", "raw accelerometer y", ACCELEROMETER),
    Column("acc_z", "g", "raw accelerometer z", ACCELEROMETER),
    Column("mag_x", "uT", "magnetometer x, RTIMULib-smoothed (calibrated if RTIMULibCal was run)", MAGNETOMETER),
    Column("mag_y", "uT", "magnetometer y, RTIMULib-smoothed (calibrated if RTIMULibCal was run)", MAGNETOMETER),
    Column("mag_z", "uT", "magnetometer z, RTIMULib-smoothed (calibrated if RTIMULibCal was run)", MAGNETOMETER),
    Column("heading", "degrees", "compass heading from the same IMU sample, 0-360", MAGNETOMETER),
    Column("temp_h", "degC", "temperature from the humidity sensor", ENVIRONMENT),
    Column("temp_p", "degC", "temperature from the pressure sensor", ENVIRONMENT),
    Column("humidity", "%RH", "relative humidity", ENVIRONMENT),
    Column("pressure", "hPa", "air pressure (millibar)", ENVIRONMENT),
    Column("cpu_temp", "degC", "SoC temperature (to correct the HAT's heat-biased readings)", CPU_TEMP),
    Column("col_r", "raw count", "colour sensor red (v2 boards)", COLOUR),
    Column("col_g", "raw count", "colour sensor green (v2 boards)", COLOUR),
    Column("col_b", "raw count", "colour sensor blue (v2 boards)", COLOUR),
    Column("col_c", "raw count", "colour sensor clear (v2 boards)", COLOUR),
    Column("seq", "", "per-session sequence number, contiguous from 0"),
    Column("session", "", "random id of the sender's buffer state"),
    Column("recv_time", "ISO 8601 UTC", "when the server received the line"),
    Column("src_ip", "", "address the line came from"),
    Column("extra", "JSON object", "numeric fields that are not columns, compact JSON"),
)

NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
ORIGINAL_HEADER: tuple[str, ...] = NAMES[:11]
SENSOR_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.group is not None)


def columns_of(group: str) -> tuple[str, ...]:
    """Names of the columns a sensor group fills."""
    return tuple(c.name for c in COLUMNS if c.group == group)

"""Pure maths on sensor values: finite floats, angles wrapped to [0, 360), the tilt-compensated heading."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def finite(value: Any, valid: Any = True) -> float | None:
    """float(value), or None if not valid or not finite."""
    if not valid or value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


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

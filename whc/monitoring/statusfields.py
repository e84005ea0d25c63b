"""The fields of a sender's status line that the server keeps, each checked for its type."""

from __future__ import annotations

import math
from typing import Any

# Status-line fields the server understands, with their types; anything else is ignored.
_INT_FIELDS = ("backlog", "spooled_bytes", "dropped", "imu_failures", "imu_samples", "imu_skipped", "imu_repeated")
_FLOAT_FIELDS = ("rate", "cpu_temp", "uptime")
_BOOL_FIELDS = ("clock_synced",)


def known_fields(status: dict[str, Any]) -> dict[str, Any]:
    """The status fields this server understands, converted; wrong types and unknown keys are dropped."""
    out: dict[str, Any] = {}
    for key in _INT_FIELDS:
        value = _number(status.get(key))
        if value is not None and value >= 0:
            out[key] = int(value)
    for key in _FLOAT_FIELDS:
        value = _number(status.get(key))
        if value is not None:
            out[key] = value
    for key in _BOOL_FIELDS:
        value = status.get(key)
        if type(value) is bool:
            out[key] = value
    return out


def _number(value: Any) -> float | None:
    """A JSON number (kept as ``protocol.Number`` text: status lines come through ``protocol.decode_line``)
    as a finite float, else None."""
    if not isinstance(value, str) or type(value) is str or len(value) > 40:
        return None
    number = float(value)
    return number if math.isfinite(number) else None

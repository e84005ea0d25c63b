"""Times and durations: ISO 8601 to Unix seconds, and the short forms the fleet log lines and the page show."""

from __future__ import annotations

from datetime import datetime


def iso_seconds(iso: str) -> float:
    """An ISO 8601 time with its offset as Unix seconds."""
    return datetime.fromisoformat(iso).timestamp()


def short_time(iso: str | None) -> str:
    """``2026-11-25T12:00:01.234567Z`` as ``2026-11-25T12:00:01.2Z``."""
    if not iso:
        return "never"
    return iso[:21] + "Z" if len(iso) == 27 else iso


def duration(seconds: float) -> str:
    """``45 s``, ``2 min 13 s``, ``3 h 5 min``, ``2 d 4 h``."""
    total = int(max(0.0, seconds))
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60} s"
    if total < 86400:
        return f"{total // 3600} h {total % 3600 // 60} min"
    return f"{total // 86400} d {total % 86400 // 3600} h"

"""The sender's health report: the status line it sends on connect and every ``stats_interval``.

Runs on the Pi, on the forwarder's thread; every figure is read from counters the other threads
keep (no locks needed: each is one int or float read).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from ..sampling.backends.sensehat_api import CPU_TEMP_PATH

log = logging.getLogger(__name__)

STA_UNSYNC = 0x0040  # adjtimex status: the clock is not synchronised
TIME_ERROR = 5  # adjtimex return value: the clock is not synchronised


class _Timex(ctypes.Structure):
    """``struct timex`` of <sys/timex.h> (Linux); only ``modes`` (0: just read) and ``status`` are used."""

    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
                ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
                ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
                ("_reserved", ctypes.c_int * 11)]


_libc: Any = None


def clock_synchronized() -> bool | None:
    """Whether the kernel says the clock is NTP-synchronised (``adjtimex``, read only); None if unknown."""
    global _libc
    if not sys.platform.startswith("linux"):
        return None
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = _Timex()
        state = _libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR and not timex.status & STA_UNSYNC


def cpu_temperature() -> float | None:
    """The SoC temperature in °C (Raspberry Pi OS and most Linux boards), or None."""
    try:
        return int(Path(CPU_TEMP_PATH).read_text().strip()) / 1000
    except (OSError, ValueError):
        return None


class HealthReport:
    """Builds status lines from the sender's parts (buffer, sampler, sensor backend)."""

    def __init__(self, unit: str, buffer: Any, sampler: Any, backend: Any) -> None:
        self.unit = unit
        self.buffer = buffer
        self.sampler = sampler
        self.backend = backend
        self.started = time.monotonic()
        self._last = (self.started, 0)
        self._failed = False

    def fields(self) -> dict[str, Any]:
        """The report as a dict, ``status`` first (that is what makes it a status line)."""
        now = time.monotonic()
        count = self.sampler.count
        then, before = self._last
        self._last = (now, count)
        rate = (count - before) / (now - then) if now > then else 0.0
        report: dict[str, Any] = {
            "status": 1, "sh_id": self.unit, "backlog": self.buffer.backlog, "spooled_bytes": self.buffer.spool.size,
            "dropped": self.buffer.dropped, "imu_failures": getattr(self.backend, "imu_failures", 0),
            "rate": round(rate, 2), "uptime": round(now - self.started, 1),
        }
        counters = getattr(self.backend, "counters", None)  # IMU samples seen, skipped, repeated (issue 16)
        if counters is not None:
            report.update((k, v) for k, v in counters().items() if k in ("imu_samples", "imu_skipped", "imu_repeated"))
        temperature = cpu_temperature()
        if temperature is not None:
            report["cpu_temp"] = temperature
        synced = clock_synchronized()
        if synced is not None:
            report["clock_synced"] = synced
        return report

    def line(self) -> bytes:
        """One status line, ready to send; if a figure cannot be read, a bare one (health must never stop data)."""
        try:
            fields = self.fields()
        except Exception:
            if not self._failed:
                self._failed = True
                log.exception("cannot compose the status line; sending a bare one")
            fields = {"status": 1, "sh_id": self.unit}
        return (json.dumps(fields) + "\n").encode()

"""Logging shared by the server and the sender: console plus a rotating file, and floods logged once."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(level: str, log_file: Path | None) -> None:
    """Log to stderr and, if given, to ``log_file`` (10 MB, 5 kept)."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = logging.Formatter(FORMAT)
    formatter.default_msec_format = "%s.%03d"
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(formatter)
    root.addHandler(console)
    if log_file is not None:
        file = logging.handlers.RotatingFileHandler(log_file, maxBytes=10 * 2**20, backupCount=5, encoding="utf-8")
        file.setFormatter(formatter)
        root.addHandler(file)


class RateLimitedLog:
    """Remembers when each key was last logged, so a flood logs once per ``period``."""

    def __init__(self, period: float = 60.0) -> None:
        self.period = period
        self._last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def due(self, key: str, now: float) -> bool:
        last = self._last.get(key)
        if last is not None and now - last < self.period:
            self.suppressed[key] = self.suppressed.get(key, 0) + 1
            return False
        if len(self._last) > 65536:
            self._last.clear()
            self.suppressed.clear()
        self._last[key] = now
        return True

    def take_suppressed(self, key: str) -> int:
        return self.suppressed.pop(key, 0)

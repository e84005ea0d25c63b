"""A one-line progress indicator on stderr for long files: pass and share of bytes read, redrawn with \\r."""

from __future__ import annotations

import sys
import time
from typing import TextIO

SHOW_ABOVE_BYTES = 64 << 20
REDRAW_SECONDS = 0.2


class Progress:
    """Shown when the stream is a terminal or the file is larger than 64 MiB; at most 5 redraws a second."""

    def __init__(self, total_bytes: int, passes: int, stream: TextIO | None = None,
                 enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = max(total_bytes, 1)
        self.passes = passes
        if enabled is None:
            enabled = self.stream.isatty() or total_bytes > SHOW_ABOVE_BYTES
        self.enabled = enabled
        self._pass = 0
        self._drawn = 0.0
        self._shown = False

    def start_pass(self, number: int) -> None:
        self._pass = number
        self.update(0, force=True)

    def update(self, done_bytes: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn < REDRAW_SECONDS:
            return
        self._drawn = now
        share = min(done_bytes / self.total, 1.0)
        bar = "#" * int(share * 30)
        self.stream.write(f"\rreport: pass {self._pass}/{self.passes} [{bar:<30}] {share:4.0%} "
                          f"of {self.total / 1e6:,.0f} MB")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        """Finish the line (if one was drawn)."""
        if self._shown:
            self.update(self.total, force=True)
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False

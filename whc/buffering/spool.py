"""The on-disk spool: numbered segment files of JSON lines, oldest first.

Every line has a position (a counter that only grows over the spool's life); a segment
is named after the position of its first line, so the spool needs no index.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from ..durable import fsync_dir

log = logging.getLogger(__name__)

SEGMENT_BYTES = 4 * 2**20
_NAME = re.compile(r"seg-(\d{20})\.jsonl\Z")


@dataclass
class Segment:
    first: int  # position of its first line
    count: int
    size: int
    path: Path

    @property
    def end(self) -> int:
        return self.first + self.count


class Spool:
    """Append-only segments in one folder; dropped from the oldest end."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.segment_bytes = min(SEGMENT_BYTES, max(4096, max_bytes // 16))
        folder.mkdir(parents=True, exist_ok=True)
        self.segments: list[Segment] = [self._load(path) for path in sorted(folder.glob("seg-*.jsonl"))
                                        if _NAME.match(path.name)]
        self.segments = [s for s in self.segments if s.count]
        for older, newer in zip(self.segments, self.segments[1:], strict=False):
            if older.end != newer.first:
                log.warning("spool: positions %d-%d missing between %s and %s", older.end, newer.first - 1,
                            older.path.name, newer.path.name)
        self._cursor: tuple[int, int, int] | None = None  # (segment first, position, byte offset) of the reader
        self._lock = threading.Lock()  # segment list and extents: appended by one thread, read by another

    @property
    def start(self) -> int | None:
        return self.segments[0].first if self.segments else None

    @property
    def end(self) -> int | None:
        return self.segments[-1].end if self.segments else None

    @property
    def size(self) -> int:
        return sum(s.size for s in self.segments)

    def append(self, first: int, lines: list[bytes]) -> None:
        """Write lines with positions first, first+1, ... and fsync them."""
        if not lines:
            return
        data = b"".join(lines)
        last = self.segments[-1] if self.segments else None
        if last is None or last.end != first or last.size + len(data) > self.segment_bytes:
            last = Segment(first, 0, 0, self.folder / f"seg-{first:020d}.jsonl")
            with self._lock:
                self.segments.append(last)
            new = True
        else:
            new = False
        try:
            with open(last.path, "ab") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            if new:
                fsync_dir(self.folder)
        except OSError:
            self._undo_append(last, new)
            raise
        with self._lock:  # readers see the lines only once they are whole on disk
            last.count += len(lines)
            last.size += len(data)

    def read(self, position: int, max_lines: int, max_bytes: int) -> list[bytes]:
        """Up to ``max_lines`` lines from ``position`` on (within one segment).

        Only what a finished ``append`` covers is read: another thread may be appending to the
        same segment, and a line it is still writing must not be taken for a whole one.
        """
        with self._lock:
            for segment in self.segments:
                if segment.first <= position < segment.end:
                    break
            else:
                return []
            end, size_limit, cursor = segment.end, segment.size, self._cursor
        offset = 0
        if cursor is not None and cursor[0] == segment.first and cursor[1] <= position:
            skip_from, offset = cursor[1], cursor[2]
        else:
            skip_from = segment.first
        lines = []
        size = 0
        try:
            with open(segment.path, "rb") as file:
                file.seek(offset)
                for _ in range(position - skip_from):
                    offset += len(file.readline())
                while len(lines) < min(max_lines, end - position) and size < max_bytes:
                    line = file.readline(max(0, size_limit - offset - size))
                    if not line.endswith(b"\n"):
                        break
                    lines.append(line)
                    size += len(line)
        except FileNotFoundError:
            return []  # acknowledged or dropped meanwhile
        with self._lock:
            self._cursor = (segment.first, position + len(lines), offset + size)
        return lines

    def _undo_append(self, segment: Segment, new: bool) -> None:
        """Cut a failed append's partial bytes, so the segment holds whole lines only."""
        try:
            if new:
                with self._lock:
                    self.segments.remove(segment)
                segment.path.unlink(missing_ok=True)
            else:
                os.truncate(segment.path, segment.size)
        except OSError as exc:
            log.error("spool: cannot undo a failed write to %s: %s", segment.path.name, exc)

    def discard_before(self, position: int) -> None:
        """Delete segments whose every line is below ``position`` (acknowledged)."""
        while self.segments and self.segments[0].end <= position:
            self._remove()

    def drop_oldest(self) -> Segment | None:
        """Delete the oldest segment to make room; return it (its lines are lost)."""
        return self._remove() if self.segments else None

    def _remove(self) -> Segment:
        with self._lock:
            segment = self.segments.pop(0)
            if self._cursor is not None and self._cursor[0] == segment.first:
                self._cursor = None
        try:
            segment.path.unlink()
        except FileNotFoundError:
            pass
        return segment

    def _load(self, path: Path) -> Segment:
        """Read a segment's extent, cutting a torn last line (power cut mid-write)."""
        data = path.read_bytes()
        cut = data.rfind(b"\n") + 1
        if cut != len(data):
            log.warning("spool: %s ended in a torn line (%d bytes), cut", path.name, len(data) - cut)
            with open(path, "r+b") as file:
                file.truncate(cut)
                os.fsync(file.fileno())
        first = int(_NAME.match(path.name).group(1))  # type: ignore[union-attr]
        return Segment(first, data.count(b"\n", 0, cut), cut, path)

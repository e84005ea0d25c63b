"""The on-disk spool: numbered segment files of self-checking records (see ``records``), oldest first.

Every record carries its position (a counter that only grows over the spool's life) and a CRC; a
segment is named after the lowest position it may hold, so the spool needs no index. Damage never
stalls reading: a record that fails its check is copied into ``damaged/`` and skipped, and positions
no intact record holds are reported once through ``on_loss`` and skipped too.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..durable import fsync_dir, write_synced
from . import records, spoolcheck
from .holes import Holes

log = logging.getLogger(__name__)

SEGMENT_BYTES = 4 * 2**20


@dataclass
class Segment:
    first: int  # no record in it lies below
    end: int  # position after its last record
    size: int  # bytes of finished appends: a reader never reads beyond
    path: Path
    sealed: bool = False  # found at start: never appended to again


class Spool:
    """Append-only segments in one folder; dropped from the oldest end.

    ``on_loss(count, file, why, start, end)`` is told of positions found lost while reading.
    """

    def __init__(self, folder: Path, max_bytes: int, acked: int | None = None, holes: Holes | None = None,
                 known_end: int = 0) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.segment_bytes = min(SEGMENT_BYTES, max(4096, max_bytes // 16))
        self.holes = holes if holes is not None else Holes()
        self.on_loss: Callable[[int, str, str, int, int], None] = lambda *_: None
        self.created = not folder.exists()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.error("spool: cannot create %s: %s", folder, exc)
        try:
            self.report = spoolcheck.check(folder, acked, self.holes, known_end, repair=True)
        except OSError as exc:  # the folder itself cannot be listed: start empty, appends will say more
            log.error("spool: cannot check %s: %s", folder, exc)
            self.report = spoolcheck.Report()
        self.segments = [Segment(s.first, s.end, s.size, s.path, sealed=True) for s in self.report.segments]
        self.unlink_later: list[Path] = []  # out of use; deleted once the state no longer needs them
        self._set_aside: set[tuple[str, int]] = set()
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
        """Write readings (JSON lines) at positions first, first+1, ... and fsync them; OSError if not."""
        if not lines:
            return
        data = b"".join(records.encode(first + i, line) for i, line in enumerate(lines))
        last = self.segments[-1] if self.segments else None
        new = (last is None or last.sealed or last.end != first or last.size + len(data) > self.segment_bytes)
        if new:
            last = Segment(first, first, 0, self.folder / spoolcheck.segment_name(first))
        assert last is not None
        try:
            if new:
                self.folder.mkdir(parents=True, exist_ok=True)  # it may have been missing at start
            fd = os.open(last.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if os.fstat(fd).st_size != last.size:
                    os.ftruncate(fd, last.size)  # cut what an earlier failed write left
                write_synced(fd, data)
            finally:
                os.close(fd)
            if new:
                fsync_dir(self.folder)
        except OSError:
            if new:
                try:
                    last.path.unlink(missing_ok=True)
                except OSError:
                    pass  # its partial records fail their checks; a retry cuts them first
            raise
        with self._lock:  # readers see the records only once they are whole on disk
            if new:
                self.segments.append(last)
            last.end = first + len(lines)
            last.size += len(data)

    def read(self, position: int, max_lines: int, max_bytes: int) -> tuple[int, list[bytes]]:
        """``(start, readings)``: up to ``max_lines`` readings at positions start, start+1, ...

        ``start`` is ``position`` unless positions from there on are lost (each loss reported once).
        With nothing to read, ``start`` is where the spool's records end.
        """
        for _ in range(len(self.segments) + 2):
            with self._lock:
                segment = next((s for s in self.segments if s.end > position), None)
                if segment is None:
                    return position, []
                cursor = self._cursor
            if position < segment.first:
                self.lose(position, segment.first, segment.path.name, "no segment holds them")
                position = segment.first
            try:
                start, lines, why = self._read_segment(segment, position, cursor, max_lines, max_bytes)
            except FileNotFoundError:
                with self._lock:
                    if segment not in self.segments:
                        return position, []  # acknowledged or dropped meanwhile
                    self.segments.remove(segment)
                self.lose(position, segment.end, segment.path.name, "its file is gone")
                continue
            except OSError as exc:
                start, lines, why = segment.end, [], f"unreadable ({exc.strerror or exc})"
            if start > position:
                self.lose(position, start, segment.path.name, why)
            if lines:
                return start, lines
            position = max(position, start)
        return position, []

    def _read_segment(self, segment: Segment, position: int, cursor: tuple[int, int, int] | None,
                      max_lines: int, max_bytes: int) -> tuple[int, list[bytes], str]:
        with self._lock:
            end, size_limit = segment.end, segment.size
        offset = cursor[2] if cursor is not None and cursor[0] == segment.first and cursor[1] <= position else 0
        lines: list[bytes] = []
        start = position
        size = 0
        why = "no record holds them"
        with open(segment.path, "rb") as file:
            file.seek(offset)
            while offset < size_limit and len(lines) < max_lines and size < max_bytes:
                line = file.readline(size_limit - offset)
                if not line:
                    break  # shorter than written: cut by something else
                record = records.decode(line)
                if record is None:
                    self._copy_aside(segment, offset, line)
                    why = "checksum or format check failed"
                elif record[0] >= start + len(lines):
                    if lines and record[0] != start + len(lines):
                        break  # a gap after what we have: the next read reports it
                    if not lines:
                        start = record[0]
                    lines.append(record[1])
                    size += len(record[1])
                offset += len(line)
        if not lines:
            start = end  # nothing intact from position to the segment's end
        with self._lock:
            self._cursor = (segment.first, start + len(lines), offset)
        return start, lines, why

    def lose(self, start: int, end: int, file: str, why: str) -> None:
        """Positions ``[start, end)`` hold nothing: report those not known lost already."""
        with self._lock:
            new = self.holes.add(start, end)
        if new:
            self.on_loss(new, file, why, start, end)

    def _copy_aside(self, segment: Segment, offset: int, data: bytes) -> None:
        """Keep a copy of damaged bytes found while reading in damaged/ (once; best effort)."""
        key = (segment.path.name, offset)
        if key in self._set_aside or len(self._set_aside) > 10000:
            return
        self._set_aside.add(key)
        try:
            aside = self.folder / spoolcheck.DAMAGED
            aside.mkdir(exist_ok=True)
            with open(aside / f"{segment.path.name}.at{offset}.{int(time.time())}", "wb") as file:
                file.write(data)
        except OSError as exc:
            log.error("spool: cannot copy damaged bytes of %s aside: %s", segment.path.name, exc)

    def discard_before(self, position: int) -> None:
        """Take segments whose every record is below ``position`` (acknowledged) out of use.

        Their files go with ``retry_unlinks``, called once the state that no longer needs them is saved:
        so at start a position between the saved ``acked`` and the first segment is a lost one.
        """
        while self.segments and self.segments[0].end <= position:
            self._remove()
        with self._lock:
            self.holes.prune(position)

    def drop_oldest(self) -> Segment | None:
        """Take the oldest segment out of use to make room; return it (its records are lost)."""
        return self._remove() if self.segments else None

    def _remove(self) -> Segment:
        with self._lock:
            segment = self.segments.pop(0)
            if self._cursor is not None and self._cursor[0] == segment.first:
                self._cursor = None
        self.unlink_later.append(segment.path)
        return segment

    def retry_unlinks(self) -> str | None:
        """Delete what could not be deleted before; the first error, or None if all went."""
        error = None
        for path in list(self.unlink_later):
            try:
                path.unlink(missing_ok=True)
                self.unlink_later.remove(path)
            except OSError as exc:
                error = error or f"cannot delete {path.name}: {exc.strerror or exc}"
        return error

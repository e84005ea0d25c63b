"""The CSV sink: appends rows to ``whc_data.csv`` (the default)."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ...columns import NAMES
from ...durable import replace_file
from ...exc import ConfigError
from ...protocol import Reading, utc_now
from .. import Row
from ..appendfile import AppendFile
from ..dedup import HighWaterMarks
from ..rejects import RejectsLog, reject_record
from . import Sink, cells, row_encoder

if TYPE_CHECKING:
    from ...config import Config

log = logging.getLogger(__name__)

HEADER = ",".join(NAMES) + "\n"
_SESSION_AT = NAMES.index("session")
_SEQ_AT = NAMES.index("seq")
_SH_ID_AT = NAMES.index("sh_id")
_SCAN_CHUNK = 1 << 20


def format_row(row: Reading) -> str:
    """One CSV line: numbers as the client wrote them, ``extra`` quoted."""
    values = cells(row, "")
    extra = values[-1]  # the last column, and the only one whose text can need quoting
    if extra:
        values[-1] = '"' + extra.replace('"', '""') + '"'
    return ",".join(values) + "\n"


class CsvSink(Sink):
    """Rows go to one CSV with a fixed header; resends are absorbed using per-session seq marks."""

    name = "csv"

    def __init__(self, path: Path, rejects: RejectsLog) -> None:
        self.requested = path
        self._lock = lock_file(path)
        self.path = choose_file(path)
        repair_torn_tail(self.path, rejects)
        self._write_header_if_empty()
        self.state_path = self.path.with_name(self.path.name + ".state")
        self.marks = load_marks(self.path, self.state_path)
        self.file = AppendFile(self.path)
        self.rows = 0

    encode = staticmethod(row_encoder(format_row))

    @classmethod
    def from_config(cls, config: Config, rejects: RejectsLog) -> CsvSink:
        return cls(config.resolve("csv"), rejects)

    def stage(self, rows: Iterable[Row]) -> int:
        duplicates = 0
        is_new = self.marks.is_new
        lines = []
        for key, seq, line in rows:
            if is_new(key, seq):
                lines.append(line)
            else:
                duplicates += 1
        if lines:
            self.file.append("".join(lines).encode("utf-8"))
            self.rows += len(lines)
        return duplicates

    def commit(self) -> int:
        self.file.commit()
        self.marks.commit()
        written, self.rows = self.rows, 0
        return written

    def describe(self) -> str:
        return str(self.path)

    def checkpoint(self) -> None:
        """Save the marks with the CSV size they describe, so a restart scans only what came after."""
        state = {
            "version": 1,
            "file": self.path.name,
            "size": self.file.size,
            "marks": [[sh_id, session, seq] for (sh_id, session), seq in self.marks.marks.items()],
        }
        # private: which units and sessions exist is nobody else's business
        replace_file(self.state_path, json.dumps(state, separators=(",", ":")).encode(), private=True)

    def close(self) -> None:
        try:
            self.checkpoint()
        except OSError as exc:
            log.warning("could not save %s: %s (the next start rescans the CSV)", self.state_path, exc)
        self.file.close()
        os.close(self._lock)

    def _write_header_if_empty(self) -> None:
        if self.path.exists() and self.path.stat().st_size > 0:
            return
        header = AppendFile(self.path)
        header.append(HEADER.encode())
        header.commit()
        header.close()


def lock_file(path: Path) -> int:
    """Hold an exclusive lock on ``path`` so two servers never append to one CSV."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(f"key 'csv': {path} is in use by another server; give each server its own csv") from None
    return fd


def read_header(path: Path) -> str | None:
    """The first line of a file (with newline), or None if it is empty or missing."""
    try:
        with open(path, "rb") as file:
            first = file.readline(1 << 16)
    except FileNotFoundError:
        return None
    return first.decode("utf-8", "replace") if first else None


def choose_file(path: Path) -> Path:
    """``path`` if its header matches ours (or it is new); else the newest matching sibling, else a new one."""
    header = read_header(path)
    if header is None or header == HEADER or (not header.endswith("\n") and HEADER.startswith(header)):
        return path  # new, ours, or ours with a header torn by a crash (repaired next)
    siblings = sorted(path.parent.glob(f"{path.stem}-*{path.suffix}"), reverse=True)
    for sibling in siblings:
        if read_header(sibling) == HEADER:
            log.warning("%s has another header; appending to %s", path, sibling)
            return sibling
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    fresh = path.with_name(f"{path.stem}-{stamp}{path.suffix}")
    log.warning("%s has another header (%s...); writing to the new file %s", path, header[:60].strip(), fresh)
    return fresh


def repair_torn_tail(path: Path, rejects: RejectsLog) -> None:
    """Move an unterminated last line (a crash mid-write) to the rejects log and truncate the CSV."""
    if not path.exists():
        return
    with open(path, "r+b") as file:
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return
        end = size
        cut = 0
        while end > 0:
            start = max(0, end - _SCAN_CHUNK)
            file.seek(start)
            at = file.read(end - start).rfind(b"\n")
            if at >= 0:
                cut = start + at + 1
                break
            end = start
        file.seek(cut)
        torn = file.read(size - cut)
        rejects.stage([reject_record(utc_now(), None, None, f"torn last line of {path.name} (crash mid-write)", torn)])
        rejects.commit()
        file.truncate(cut)
        file.flush()
        os.fsync(file.fileno())
    log.warning("%s: moved a torn last line (%d bytes) to the rejects log", path, size - cut)


def load_marks(path: Path, state_path: Path) -> HighWaterMarks:
    """Rebuild seq marks: the saved state plus a scan of whatever the CSV gained after it."""
    marks = HighWaterMarks()
    offset = 0
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("file") == path.name and 0 < state["size"] <= path.stat().st_size:
            for sh_id, session, seq in state["marks"]:
                marks.observe(sh_id, session, seq)
            offset = state["size"]
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s unusable (%s); rescanning %s", state_path, exc, path)
        marks = HighWaterMarks()
    scanned = scan_marks(path, offset, marks)
    if scanned:
        log.info("%s: rebuilt seq marks from %d rows", path, scanned)
    return marks


def scan_marks(path: Path, offset: int, marks: HighWaterMarks) -> int:
    """Feed every row from ``offset`` (0: after the header) into ``marks``; return rows read."""
    rows = 0
    with open(path, "rb") as file:
        if offset:
            file.seek(offset)
        else:
            file.readline()
        for raw in file:
            fields = raw.split(b",", _SESSION_AT + 1)  # no comma can occur before ``extra``
            if len(fields) > _SESSION_AT and fields[_SEQ_AT]:
                try:
                    seq = int(fields[_SEQ_AT])
                except ValueError:
                    continue
                marks.observe(fields[_SH_ID_AT].decode(), fields[_SESSION_AT].decode(), seq)
            rows += 1
    return rows


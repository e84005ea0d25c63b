"""The CSV on disk: its header, its lock, which file is the active one, a torn tail cut off, and the
seq marks rebuilt from the saved state plus a scan of what came after it."""

from __future__ import annotations

import fcntl
import gzip
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from .. import clock
from ..columns import NAMES
from ..exc import ConfigError
from ..protocol import utc_now
from .appendfile import AppendFile
from .csvnames import active_alias, closed_files
from .dedup import HighWaterMarks
from .rejects import RejectsLog, reject_record

log = logging.getLogger(__name__)

HEADER = ",".join(NAMES) + "\n"
_SESSION_AT = NAMES.index("session")
_SEQ_AT = NAMES.index("seq")
_SH_ID_AT = NAMES.index("sh_id")
_SCAN_CHUNK = 1 << 20


def write_header_if_empty(path: Path) -> None:
    """Give a new or empty CSV its header, durably."""
    if path.exists() and path.stat().st_size > 0:
        return
    header = AppendFile(path)
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
    """``path`` if its header matches ours (or it is new); else ``<stem>-active<suffix>`` beside it."""
    if _is_ours(read_header(path)):
        return path  # new, ours, or ours with a header torn by a crash (repaired next)
    alias = active_alias(path)
    if not _is_ours(read_header(alias)):
        raise ConfigError(f"key 'csv': {path} and {alias} both hold another header; move them away or choose "
                          "another csv")
    if alias.exists():
        log.warning("%s has another header; appending to %s", path, alias)
    else:
        log.warning("%s has another header (%s...); writing to the new file %s", path,
                    (read_header(path) or "")[:60].strip(), alias)
    return alias


def _is_ours(header: str | None) -> bool:
    return header is None or header == HEADER or (not header.endswith("\n") and HEADER.startswith(header))


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


def load_marks(path: Path, state_path: Path, configured: Path | None = None) -> HighWaterMarks:
    """Rebuild seq marks: the saved state plus a scan of every row stored after it.

    The state names the file (by inode) and the size it covers. That is normally the active file;
    after a crash right after a switch it can be the file just closed, and then the closed files
    after it are scanned too. Without usable state every closed file (plain or gzipped) is scanned.
    """
    files = [*closed_files(configured or path), path]
    marks = HighWaterMarks()
    start, offset = 0, 0
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        at = _state_file(state, files, path)
        if at is not None and 0 < state["size"] <= files[at].stat().st_size:
            for sh_id, session, seq in state["marks"]:
                marks.observe(sh_id, session, seq)
            start, offset = at, state["size"]
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s unusable (%s); rescanning %s", state_path, exc, path)
        marks = HighWaterMarks()
    scanned = 0
    for number, file in enumerate(files[start:]):
        scanned += scan_marks(file, offset if number == 0 else 0, marks)
    if scanned:
        log.info("%s: rebuilt seq marks from %d rows in %d file(s)", path, scanned, len(files) - start)
    return marks


def _state_file(state: dict, files: list[Path], active: Path) -> int | None:
    """Which of ``files`` the state describes (by inode; version 1 named only the active file)."""
    if "inode" not in state:
        return len(files) - 1 if state.get("file") == active.name else None
    for at in range(len(files) - 1, -1, -1):
        if files[at].suffix != ".gz" and files[at].stat().st_ino == state["inode"]:
            return at
    return None


def scan_marks(path: Path, offset: int, marks: HighWaterMarks) -> int:
    """Feed every row from ``offset`` (0: after the header) into ``marks``; return rows read."""
    rows = 0
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as file:
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



_RECV_AT = NAMES.index("recv_time")


def row_time(line: str) -> float | None:
    """The receive time of one CSV line, as epoch seconds (None if unreadable)."""
    fields = line.split(",", _RECV_AT + 1)
    try:
        return datetime.strptime(fields[_RECV_AT], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    except (IndexError, ValueError):
        return None


def first_row_time(path: Path) -> float | None:
    """The receive time of the first row of ``path``; None if it has none (or it is unreadable, then: now)."""
    with open(path, "rb") as file:
        file.readline()
        line = file.readline(1 << 20).decode("utf-8", "replace")
    if not line:
        return None
    found = row_time(line)
    return found if found is not None else clock.now()

"""The CSV sink: appends rows to ``whc_data.csv`` (the default)."""

from __future__ import annotations

import fcntl
import gzip
import json
import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ... import clock
from ...columns import NAMES
from ...durable import fsync_dir, replace_file
from ...exc import ConfigError, StorageError
from ...protocol import Reading, utc_now
from .. import Row
from ..appendfile import AppendFile
from ..dedup import HighWaterMarks
from ..rejects import RejectsLog, reject_record
from ..rotation import (
    Housekeeper,
    RotationPolicy,
    active_alias,
    closed_files,
    closed_name,
    period_of,
    recover_switch,
    switch_files,
    tidy,
)
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
    """Rows go to one CSV with a fixed header; resends are absorbed using per-session seq marks.

    With a rotation policy the active file is closed (renamed, see ``rotation``) and a new one begun
    at a commit boundary, when the hour or day changes or before the file would pass its size limit.
    """

    name = "csv"

    def __init__(self, path: Path, rejects: RejectsLog, policy: RotationPolicy | None = None) -> None:
        self.requested = path
        self.policy = policy or RotationPolicy()
        self._lock = lock_file(path)
        if recover_switch(path, path):
            self._lock = self._swap_lock()
        recover_switch(active_alias(path), path)
        tidy(path)
        self.path = choose_file(path)
        repair_torn_tail(self.path, rejects)
        write_header_if_empty(self.path)
        self.state_path = self.path.with_name(self.path.name + ".state")
        self.marks = load_marks(self.path, self.state_path, path)
        self.file = AppendFile(self.path)
        self.first_row = first_row_time(self.path)  # receive time of the active file's first row
        self._staged_first: float | None = None
        self._dir_dirty = False
        self.rows = 0
        self.rotations = 0
        self.housekeeper = Housekeeper(path, self.policy) if self.policy.housekeeping else None
        if self.housekeeper is not None:
            self.housekeeper.start()

    encode = staticmethod(row_encoder(format_row))

    @classmethod
    def from_config(cls, config: Config, rejects: RejectsLog) -> CsvSink:
        policy = RotationPolicy(config["csv_rotate"], config["csv_max_bytes"], config["csv_compress"],
                                config["csv_keep_days"])
        return cls(config.resolve("csv"), rejects, policy)

    def known_units(self) -> set[str]:
        return {sh_id for sh_id, _session in self.marks.marks}

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
            if self._staged_first is None:
                self._staged_first = row_time(lines[0]) or clock.now()
            self.file.append("".join(lines).encode("utf-8"))
            self.rows += len(lines)
        return duplicates

    def commit(self) -> int:
        if self.file.staged and self._rotation_due(self.file.staged_bytes):
            self._rotate()
        if self._dir_dirty:
            self._sync_dir()
        self.file.commit()
        self.marks.commit()
        if self.first_row is None:
            self.first_row = self._staged_first
        self._staged_first = None
        written, self.rows = self.rows, 0
        return written

    def maintain(self) -> None:
        """Between commits: close the active file if its hour or day is over (StorageError: try later)."""
        if not self.file.staged and self._period_over():
            self._rotate()
            self._sync_dir()

    def reopen(self) -> None:
        """Close the active file and open the configured name afresh (SIGHUP, after an external logrotate).

        StorageError if the new file cannot be opened; the old one then stays in use."""
        self.checkpoint_quietly()
        try:
            lock = self._relock()
            try:
                path = choose_file(self.requested)
                write_header_if_empty(path)
                fresh = AppendFile(path)
            except BaseException:
                if lock != self._lock:
                    os.close(lock)
                raise
        except (ConfigError, OSError) as exc:
            raise StorageError(f"cannot reopen {self.requested}: {exc}") from exc
        self.file.close()
        if lock != self._lock:
            os.close(self._lock)
        self._lock, self.path, self.file = lock, path, fresh
        self.state_path = path.with_name(path.name + ".state")
        self.first_row = first_row_time(path)
        self.checkpoint_quietly()
        log.info("reopened %s", path)

    def _swap_lock(self) -> int:
        """Lock the file now at the configured name and release the old lock; the new lock's descriptor."""
        lock = self._relock()
        if lock != self._lock:
            os.close(self._lock)
        return lock

    def _relock(self) -> int:
        """A lock on the file now at the configured name (the held one if it is still that file)."""
        try:
            if os.stat(self.requested).st_ino == os.fstat(self._lock).st_ino:
                return self._lock
        except FileNotFoundError:
            pass
        return lock_file(self.requested)

    def _rotation_due(self, pending: int) -> bool:
        if self.first_row is None:
            return False  # no rows yet: nothing to close
        if self.policy.max_bytes and self.file.size + pending > self.policy.max_bytes:
            return True
        return self._period_over()

    def _period_over(self) -> bool:
        """True if the active file has rows from an hour or day (as configured) that is over."""
        period = self.policy.period
        return bool(period) and self.first_row is not None and period_of(clock.now(), period) > period_of(
            self.first_row, period)

    def _rotate(self) -> None:
        """Close the active file under its closed name and continue in a new one; StorageError changes nothing."""
        assert self.first_row is not None
        try:
            closed = closed_name(self.requested, self.first_row)
            fd = switch_files(self.path, closed, HEADER.encode())
        except OSError as exc:
            raise StorageError(f"{self.path}: cannot start a new file: {exc.strerror or exc}") from exc
        old = self.file
        self.file = AppendFile(self.path, fd)
        for data in old.take_staged():
            self.file.append(data)
        old.close()
        self._dir_dirty = True
        if self.path == self.requested:  # the lock belongs to the inode now closed
            try:
                self._lock = self._swap_lock()
            except ConfigError as exc:
                log.error("after rotating: %s", exc)
        self.first_row = None
        self.rotations += 1
        log.info("closed %s; writing a new %s", closed.name, self.path.name)
        self.checkpoint_quietly()
        if self.housekeeper is not None:
            self.housekeeper.poke()

    def _sync_dir(self) -> None:
        try:
            fsync_dir(self.path.parent)
        except OSError as exc:
            raise StorageError(f"{self.path.parent}: {exc.strerror or exc}") from exc
        self._dir_dirty = False

    def describe(self) -> str:
        return str(self.path)

    def checkpoint(self) -> None:
        """Save the marks with the CSV size they describe, so a restart scans only what came after."""
        state = {
            "version": 2,
            "file": self.path.name,
            "inode": self.file.inode(),
            "size": self.file.size,
            "marks": [[sh_id, session, seq] for (sh_id, session), seq in self.marks.marks.items()],
        }
        # private: which units and sessions exist is nobody else's business
        replace_file(self.state_path, json.dumps(state, separators=(",", ":")).encode(), private=True)

    def checkpoint_quietly(self) -> None:
        try:
            self.checkpoint()
        except OSError as exc:
            log.warning("could not save %s: %s (the next start rescans the CSV)", self.state_path, exc)

    def close(self) -> None:
        if self.housekeeper is not None:
            self.housekeeper.stop(1.0)
        self.checkpoint_quietly()
        self.file.close()
        os.close(self._lock)


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

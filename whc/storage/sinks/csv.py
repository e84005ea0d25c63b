"""The CSV sink: appends rows to ``whc_data.csv`` (the default)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ... import clock
from ...columns import NAMES
from ...durable import fsync_dir, replace_file
from ...exc import ConfigError, StorageError
from ...protocol import Reading
from .. import Row, RunRows
from ..appendfile import AppendFile
from ..csvfile import (  # noqa: F401  (HEADER: for importers)
    HEADER,
    choose_file,
    first_row_time,
    load_marks,
    lock_file,
    repair_torn_tail,
    row_time,
    write_header_if_empty,
)
from ..csvnames import active_alias, closed_name
from ..housekeeping import Housekeeper, tidy
from ..rejects import RejectsLog
from ..rotation import RotationPolicy, period_of, recover_switch, switch_files
from . import Sink, cells, row_encoder

if TYPE_CHECKING:
    from ...config import Config

log = logging.getLogger(__name__)

_BEFORE_SEQ = NAMES[:NAMES.index("seq")]
_BLANKS = ("",) * len(_BEFORE_SEQ)
if NAMES[len(_BEFORE_SEQ):] != ("seq", "session", "recv_time", "src_ip", "extra"):
    raise ImportError("format_row writes seq, session, recv_time, src_ip and extra last: update it with NAMES")


def format_row(row: Reading) -> str:
    """One CSV line: numbers as the client wrote them, ``extra`` quoted."""
    try:  # the common case, at C speed: every value before seq is text or missing
        head = ",".join(map(row.get, _BEFORE_SEQ, _BLANKS))
    except TypeError:  # a null among them
        return _format_cells(row)
    if "extra" in row:
        return _format_cells(row)
    seq = row.get("seq")
    if seq is None:
        return f"{head},,,{row['recv_time']},{row['src_ip']},\n"
    return f"{head},{seq},{row['session']},{row['recv_time']},{row['src_ip']},\n"


def _format_cells(row: Reading) -> str:
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
    takes_runs = True

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
            if line.__class__ is RunRows:
                resent = self.marks.resent_in_run(key, seq, len(line.lines))
                lines.extend(line.lines[resent:] if resent else line.lines)
                duplicates += resent
            elif is_new(key, seq):
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

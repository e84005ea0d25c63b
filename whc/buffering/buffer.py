"""Store and forward: readings wait in memory, spill to the spool, and leave only when acknowledged.

Positions number every reading the buffer ever held. The spool holds the older unacked
part, memory the newer; the forwarder reads from ``acked`` onwards and acks positions.
Sampling holds the lock only to number a reading, encode it and append it: it never waits on
disk or network.
Disk errors never leave this class: a spool that cannot be written keeps readings in memory
(up to ``memory_readings``), retries every operation at each ``spill`` and says so in ``disk_error``.
"""

from __future__ import annotations

import errno
import json
import logging
import secrets
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from ..sampling.hatlock import LOCK_NAME
from . import state as state_file
from .holes import Holes
from .spool import Spool

log = logging.getLogger(__name__)

STATE_FILE = state_file.STATE_FILE


class Buffer:
    """Thread-safe FIFO of encoded readings with a durable tail on disk."""

    def __init__(self, folder: Path, max_spool_bytes: int, memory_readings: int, fsync_interval: float) -> None:
        self.folder = folder
        self.memory_readings = memory_readings
        self.fsync_interval = fsync_interval
        self._lock = threading.Lock()
        self._memory: deque[tuple[float, bytes]] = deque()  # (monotonic time added, line); positions follow the spool
        self._dropped = 0
        self.disk_error: str | None = None
        self.wake: threading.Event = threading.Event()
        existed = _holds_anything(folder)
        state, problem = state_file.read(folder)
        known_end = state.get("end", 0)
        self.spool = Spool(folder, max_spool_bytes, state.get("acked", 0) if state else None,
                           Holes(state.get("holes")), known_end)
        self.spool.on_loss = self._lost
        report = self.spool.report
        for loss in report.losses:
            if loss.new:
                self._lost(loss.new, loss.file, loss.why, loss.start, loss.end)
        log.info("%s", report.summary())
        self.acked = max(state.get("acked", 0), self.spool.start or 0)
        self._memory_start = max(self.spool.end or 0, self.acked, known_end)
        self.session, self.next_seq = self._choose_session(state, problem, existed, report.max_seq)
        if self.backlog:
            log.info("resuming %d unacknowledged readings from %s", self.backlog, folder)
        self._state_dirty = False
        if self._write_state(clean=False) is not None:
            if self.next_seq:
                self.session, self.next_seq = secrets.token_hex(6), 0
                log.warning("cannot record in %s that this run started: new session %s, so that no seq number "
                            "the server may hold is sent again", folder / STATE_FILE, self.session)
            self._disk_failed(f"cannot save {STATE_FILE}")

    def _choose_session(self, state: dict[str, Any], problem: str | None, existed: bool,
                        max_seq: dict[str, int]) -> tuple[str, int]:
        """The last session when it stopped cleanly and nothing says the state is stale; else a new one."""
        new = secrets.token_hex(6)
        session, next_seq = state.get("session"), state.get("next_seq")
        if problem is not None:
            log.warning("spool state lost: %s; new session %s", problem, new)
        elif not state:
            if existed:
                log.warning("spool state lost: %s is missing; new session %s", self.folder / STATE_FILE, new)
        elif not (state.get("clean") is True and isinstance(session, str) and session and type(next_seq) is int):
            log.warning("the last run did not stop cleanly: readings of its last %.1f s may be lost; "
                        "new session %s", self.fsync_interval, new)
        elif max_seq.get(session, -1) >= next_seq:
            log.warning("spool state is older than the spool (seq %d of session %s is spooled, state says next "
                        "is %d); new session %s", max_seq[session], session, next_seq, new)
        else:
            return session, next_seq
        return new, 0

    # --- the sampler's side -----------------------------------------------------------------
    def add(self, reading: dict[str, Any]) -> None:
        """Number a reading (session, seq) and queue it."""
        with self._lock:
            reading["session"] = self.session
            reading["seq"] = self.next_seq
            self.next_seq += 1
            if self.disk_error is not None and len(self._memory) >= self.memory_readings:
                self._dropped += 1  # nowhere to keep it; its seq stays unused, so the gap shows
                return
            self._memory.append((time.monotonic(), (json.dumps(reading, separators=(",", ":")) + "\n").encode()))
        self.wake.set()

    # --- the forwarder's side ---------------------------------------------------------------
    @property
    def end(self) -> int:
        """Position after the newest reading."""
        return self._memory_start + len(self._memory)

    @property
    def backlog(self) -> int:
        return self.end - self.acked

    @property
    def waiting(self) -> int:
        """Unacknowledged readings still held (the backlog less positions known lost)."""
        with self._lock:
            return self.backlog - self.spool.holes.overlap(self.acked, self.end)

    @property
    def dropped(self) -> int:
        return self._dropped

    def read(self, position: int, max_lines: int, max_bytes: int = 256 * 1024) -> tuple[int, list[bytes]]:
        """``(start, lines)``: readings at positions start, start+1, ...; start > position past lost ones.

        Empty when there is nothing (yet).
        """
        with self._lock:
            position = max(position, self.acked)
            memory_start = self._memory_start
            if position >= memory_start:
                return position, self._from_memory(position, max_lines, max_bytes)
            spool = self.spool
        start, lines = spool.read(position, max_lines, max_bytes)
        if lines:
            return start, lines
        with self._lock:
            if self.acked > position:
                return position, []  # dropped from a full spool meanwhile: the forwarder restarts
        spool.lose(start, memory_start, spool.segments[-1].path.name if spool.segments else "the spool",
                   "no segment holds them")
        return self.read(memory_start, max_lines, max_bytes)  # in memory, or spilled to the spool meanwhile

    def _from_memory(self, position: int, max_lines: int, max_bytes: int) -> list[bytes]:
        index = position - self._memory_start
        lines = []
        size = 0
        for i in range(index, min(len(self._memory), index + max_lines)):
            line = self._memory[i][1]
            lines.append(line)
            size += len(line)
            if size >= max_bytes:
                break
        return lines

    def ack(self, position: int) -> None:
        """Everything before ``position`` is safely stored by the server."""
        with self._lock:
            if position <= self.acked:
                return
            self.acked = position
            drop = min(position, self.end) - self._memory_start
            for _ in range(max(0, drop)):
                self._memory.popleft()
            if drop > 0:
                self._memory_start += drop

    def _lost(self, count: int, file: str, why: str, start: int, end: int) -> None:
        """Readings the spool lost to damage: counted with the other drops, logged, remembered in the state."""
        with self._lock:
            self._dropped += count
            self._state_dirty = True
        log.warning("spool damaged: dropped %d readings (positions %d-%d) in %s: %s; %d dropped in all",
                    count, start, end - 1, file, why, self._dropped)

    # --- housekeeping (main thread) ---------------------------------------------------------
    def spill(self, spill_all: bool = False) -> None:
        """Spill readings waiting longer than ``fsync_interval`` (or all) to the spool; enforce its limit.

        Retries whatever failed before (deletes, state), so a card that works again is used again.
        """
        errors: list[str] = []
        cutoff = time.monotonic() - self.fsync_interval
        with self._lock:
            count = 0
            for added, _line in self._memory:
                if not spill_all and added > cutoff and len(self._memory) - count <= self.memory_readings:
                    break
                count += 1
            first = self._memory_start
            lines = [self._memory[i][1] for i in range(count)]
        touched = bool(lines)
        if lines:
            try:
                self.spool.append(first, lines)
            except OSError as exc:
                errors.append(f"cannot write the spool: {exc.strerror or exc}")
                touched = False
            else:
                with self._lock:  # acks may have taken some of them off meanwhile
                    still = max(0, first + count - self._memory_start)
                    for _ in range(still):
                        self._memory.popleft()
                    self._memory_start += still
        with self._lock:
            before = len(self.spool.segments)
            self.spool.discard_before(self.acked)
            touched = touched or len(self.spool.segments) != before
        touched = self._enforce_limit() or touched
        if touched or self._state_dirty or errors or self.disk_error or self.spool.unlink_later:
            failed = self._write_state(clean=False)  # no disk writes at all while acks keep up
            if failed is not None and failed.errno == errno.ENOSPC and self.spool.unlink_later:
                self.spool.retry_unlinks()  # a full card: room first (a crash now may count them lost)
                failed = self._write_state(clean=False)
            if failed is not None:
                errors.append(f"cannot save {STATE_FILE}: {failed.strerror or failed}")
            elif self.spool.unlink_later:  # the saved state no longer needs them
                errors += [error for error in (self.spool.retry_unlinks(),) if error]
        if errors:
            self._disk_failed("; ".join(errors))
        elif self.disk_error is not None:
            log.warning("spool works again (it failed: %s); %d readings in memory, %d dropped in all",
                        self.disk_error, len(self._memory), self._dropped)
            self.disk_error = None

    def _disk_failed(self, error: str) -> None:
        """The spool cannot be written (SD card full or failing): readings stay in memory, up to its limit."""
        if self.disk_error is None:
            log.error("SPOOL WRITE FAILING (%s): keeping up to %d readings in memory; newer ones are dropped "
                      "and counted; retrying every %g s", error, self.memory_readings, self.fsync_interval)
        self.disk_error = error

    def _enforce_limit(self) -> bool:
        dropped_any = False
        while self.spool.size > self.spool.max_bytes and len(self.spool.segments) > 1:
            dropped_any = True
            with self._lock:
                segment = self.spool.drop_oldest()
                if segment is None:
                    break
                low = max(segment.first, self.acked)
                lost = max(0, segment.end - low) - self.spool.holes.overlap(low, segment.end)
                self.acked = max(self.acked, segment.end)
                self._dropped += lost
            log.warning("spool full (%d bytes): dropped the %d oldest readings; %d dropped in all",
                        self.spool.max_bytes, lost, self._dropped)
        return dropped_any

    def close(self) -> None:
        """Put every unacknowledged reading on disk; mark the state clean only if that worked."""
        self.spill(spill_all=True)
        with self._lock:
            left = len(self._memory)
            if left:
                self._dropped += left
                self._memory.clear()
        if left:
            log.error("could not spool the last %d unacknowledged readings (%s): dropped; %d dropped in all",
                      left, self.disk_error, self._dropped)
        self._write_state(clean=not left)

    # --- state ------------------------------------------------------------------------------
    def _write_state(self, clean: bool) -> OSError | None:
        """Save the state durably; the error (logged, retried at the next spill) if the card refuses."""
        with self._lock:
            state = {"session": self.session, "next_seq": self.next_seq, "acked": self.acked,
                     "end": max(self.spool.end or 0, self._memory_start if not self._memory else 0),
                     "holes": [list(r) for r in self.spool.holes.ranges], "clean": clean}
            self._state_dirty = False
        try:
            state_file.write(self.folder, state)
            return None
        except OSError as exc:  # a full card must not stop sampling; the next spill tries again
            self._state_dirty = True
            if self.disk_error is None:  # while the spool fails, one line says so, not one per attempt
                log.error("cannot save %s: %s", self.folder / STATE_FILE, exc)
            return exc


def _holds_anything(folder: Path) -> bool:
    """True if ``folder`` exists with something in it (a missing state.json there is news)."""
    try:
        return any(path.name != LOCK_NAME for path in folder.iterdir())  # the emulator's HAT lock is not state
    except OSError:
        return False

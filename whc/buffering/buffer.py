"""Store and forward: readings wait in memory, spill to the spool, and leave only when acknowledged.

Positions number every reading the buffer ever held. The spool holds the older unacked
part, memory the newer; the forwarder reads from ``acked`` onwards and acks positions.
Sampling only ever takes the lock for a list append: it never waits on disk or network.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from .spool import Spool

log = logging.getLogger(__name__)

STATE_FILE = "state.json"


class Buffer:
    """Thread-safe FIFO of encoded readings with a durable tail on disk."""

    def __init__(self, folder: Path, max_spool_bytes: int, memory_readings: int, fsync_interval: float) -> None:
        self.folder = folder
        self.memory_readings = memory_readings
        self.fsync_interval = fsync_interval
        self.spool = Spool(folder, max_spool_bytes)
        self._lock = threading.Lock()
        self._memory: deque[tuple[float, bytes]] = deque()  # (monotonic time added, line); positions follow the spool
        self.dropped = 0
        self.disk_error: str | None = None
        self.added = 0
        self.spilled = 0
        self.wake: threading.Event = threading.Event()
        state = self._read_state()
        spool_end = self.spool.end
        self.acked = max(state.get("acked", 0), self.spool.start or 0)
        self._memory_start = max(spool_end if spool_end is not None else 0, state.get("acked", 0))
        if state.get("clean") and isinstance(state.get("session"), str):
            self.session: str = state["session"]
            self.next_seq: int = state["next_seq"]
        else:
            self.session = secrets.token_hex(6)
            self.next_seq = 0
            if state:
                log.warning("the last run did not stop cleanly: readings of its last %.1f s may be lost; "
                            "new session %s", fsync_interval, self.session)
        if self.backlog:
            log.info("resuming %d unacknowledged readings from %s", self.backlog, folder)
        self._write_state(clean=False)

    # --- the sampler's side -----------------------------------------------------------------
    def add(self, reading: dict[str, Any]) -> None:
        """Number a reading (session, seq) and queue it."""
        with self._lock:
            reading["session"] = self.session
            reading["seq"] = self.next_seq
            self.next_seq += 1
            if self.disk_error is not None and len(self._memory) >= self.memory_readings:
                self.dropped += 1  # nowhere to keep it; its seq stays unused, so the gap shows
                return
            self._memory.append((time.monotonic(), (json.dumps(reading, separators=(",", ":")) + "\n").encode()))
            self.added += 1
        self.wake.set()

    # --- the forwarder's side ---------------------------------------------------------------
    @property
    def end(self) -> int:
        """Position after the newest reading."""
        return self._memory_start + len(self._memory)

    @property
    def backlog(self) -> int:
        return self.end - self.acked

    def read(self, position: int, max_lines: int, max_bytes: int = 256 * 1024) -> list[bytes]:
        """Lines from ``position`` on; empty when there is nothing (yet)."""
        with self._lock:
            position = max(position, self.acked)
            if position >= self._memory_start:
                index = position - self._memory_start
                stop = min(len(self._memory), index + max_lines)
                lines = []
                size = 0
                for i in range(index, stop):
                    line = self._memory[i][1]
                    lines.append(line)
                    size += len(line)
                    if size >= max_bytes:
                        break
                return lines
            spool = self.spool
        return spool.read(position, max_lines, max_bytes)

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

    # --- housekeeping (main thread) ---------------------------------------------------------
    def flush(self, spill_all: bool = False) -> None:
        """Spill readings waiting longer than ``fsync_interval`` (or all) to the spool; enforce its limit."""
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
                self._disk_failed(exc)
                return
            self.disk_error = None
            with self._lock:  # acks may have taken some of them off meanwhile
                still = max(0, first + count - self._memory_start)
                for _ in range(still):
                    self._memory.popleft()
                self._memory_start += still
                self.spilled += count
        with self._lock:
            before = len(self.spool.segments)
            self.spool.discard_before(self.acked)
            touched = touched or len(self.spool.segments) != before
        touched = self._enforce_limit() or touched
        if touched:  # no disk writes at all while acks keep up
            self._write_state(clean=False)

    def _disk_failed(self, exc: OSError) -> None:
        """The spool cannot be written (SD card full or failing): readings stay in memory, up to its limit."""
        if self.disk_error is None:
            log.error("SPOOL WRITE FAILING (%s): keeping up to %d readings in memory; newer ones are dropped "
                      "and counted until it works again", exc, self.memory_readings)
        self.disk_error = str(exc)

    def _enforce_limit(self) -> bool:
        dropped_any = False
        while self.spool.size > self.spool.max_bytes and len(self.spool.segments) > 1:
            dropped_any = True
            with self._lock:
                segment = self.spool.drop_oldest()
                if segment is None:
                    break
                lost = max(0, segment.end - max(segment.first, self.acked))
                self.acked = max(self.acked, segment.end)
                self.dropped += lost
            log.warning("spool full (%d bytes): dropped the %d oldest readings; %d dropped in all",
                        self.spool.max_bytes, lost, self.dropped)
        return dropped_any

    def close(self) -> None:
        """Put every unacknowledged reading on disk and mark the state clean."""
        self.flush(spill_all=True)
        self._write_state(clean=True)

    # --- state ------------------------------------------------------------------------------
    def _read_state(self) -> dict[str, Any]:
        try:
            state = json.loads((self.folder / STATE_FILE).read_text())
            return state if isinstance(state, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("spool state unreadable (%s); starting a new session", exc)
            return {}

    def _write_state(self, clean: bool) -> None:
        with self._lock:
            state = {"session": self.session, "next_seq": self.next_seq, "acked": self.acked, "clean": clean}
        path = self.folder / STATE_FILE
        tmp = path.with_name(STATE_FILE + ".tmp")
        try:
            with open(tmp, "w") as file:
                json.dump(state, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except OSError as exc:  # a full card must not stop sampling; the next write tries again
            log.error("cannot save %s: %s", path, exc)

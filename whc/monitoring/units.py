"""Per-unit state on the server: what each ``sh_id`` delivered, where it stands, and what it says of itself.

The server loop updates it once per committed batch and once per status line (never once per
reading), and ticks it once a second for rates and silence. Only that thread changes it. The HTTP
thread calls ``snapshot``, which only reads: it copies the units list and each deque in one C-level
call (atomic under the GIL) and reads plain attributes, so at worst one unit's figures are a batch
apart from each other; nothing waits on a lock.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..protocol import valid_id
from ..storage import Batch
from .statusfields import known_fields
from .timetext import duration, iso_seconds, short_time

log = logging.getLogger("whc.fleet")

BIN_SECONDS = 5  # the rate history's resolution
HISTORY_BINS = 120  # 10 minutes of history
OFFSET_SAMPLES = 31  # live clock-offset samples the median is taken over
LIVE_BACKLOG = 200  # a sender with at most this many readings waiting is sending fresh readings

@dataclass(eq=False)
class Unit:
    """Everything the server knows of one unit since it started."""

    sh_id: str
    connections: int = 0
    address: str | None = None
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    last_time: str | None = None  # sample time of the newest reading stored
    last_recv: str | None = None  # its receive time
    last_stored_at: float | None = None  # monotonic time a new reading was last stored
    session: str | None = None
    seq: int | None = None  # highest seq stored in ``session``
    seq_holes: int = 0  # gaps seen live
    seq_missing: int = 0  # readings those gaps left out
    offsets: deque[float] = field(default_factory=lambda: deque(maxlen=OFFSET_SAMPLES))
    health: dict[str, Any] | None = None  # the sender's newest status line (known fields only)
    health_at: float | None = None  # monotonic time of it
    health_wall: float | None = None
    stored_at_health: int = 0
    previous_backlog: int | None = None  # backlog in the report before the newest
    stored_at_previous: int = 0
    silent: bool = False
    stalled: bool = False
    totals: deque[int] = field(default_factory=lambda: deque(maxlen=HISTORY_BINS + 1))
    born: float = field(default_factory=time.monotonic)

    @property
    def connected(self) -> bool:
        return self.connections > 0

    def backlog_estimate(self, now: float) -> float | None:
        """Readings the sender has waiting now: its last report, plus what it sampled since, less what arrived."""
        if self.health is None or "backlog" not in self.health or self.health_at is None:
            return None
        sampled = (self.health.get("rate") or 0.0) * (now - self.health_at)
        return self.health["backlog"] + sampled - (self.stored - self.stored_at_health)


class Fleet:
    """All units, by ``sh_id``; bounded by ``max_units`` (new ones beyond it are not tracked)."""

    def __init__(self, silent_after: float, max_units: int = 4096) -> None:
        self.silent_after = silent_after
        self.late_after = silent_after / 3
        self.max_units = max_units
        self.units: dict[str, Unit] = {}
        self.untracked = 0  # sh_ids seen beyond max_units
        self._next_bin = time.monotonic() + BIN_SECONDS

    # --- updates from the server loop ---------------------------------------------------------
    def unit(self, sh_id: str) -> Unit | None:
        found = self.units.get(sh_id)
        if found is None:
            if len(self.units) >= self.max_units:
                self.untracked += 1
                return None
            found = self.units[sh_id] = Unit(sh_id)
            found.totals.append(0)
        return found

    def known(self, sh_ids: Any) -> None:
        """Units known from stored data (the dedup state), listed though not seen since start."""
        for sh_id in sh_ids:
            if valid_id(sh_id):
                self.unit(sh_id)

    def attach(self, conn: Any, sh_id: str, ip: str) -> None:
        """Connection ``conn`` speaks for ``sh_id`` (from its hello or first reading)."""
        if conn.unit is not None or getattr(conn, "closed", False) or not valid_id(sh_id):
            return
        unit = self.unit(sh_id)
        if unit is None:
            return
        conn.unit = sh_id
        unit.connections += 1
        unit.address = ip

    def detach(self, conn: Any) -> None:
        """Connection ``conn`` closed."""
        unit = self.units.get(conn.unit) if conn.unit is not None else None
        conn.unit = None
        if unit is not None:
            unit.connections -= 1
            if not unit.connected and unit.stalled:
                unit.stalled = False
                log.info("%s no longer stalled: disconnected", unit.sh_id)

    def committed(self, batch: Batch, conn: Any, ip: str, now: float) -> None:
        """A batch is durably handled: count it against its unit(s)."""
        spans = batch.spans
        if spans and conn.unit is None:
            self.attach(conn, spans[0].sh_id, ip)
        if batch.rejects:
            sh_id = conn.unit or (spans[0].sh_id if spans else None)
            unit = self.units.get(sh_id) if sh_id is not None else None
            if unit is not None:
                unit.rejected += len(batch.rejects)
        for span in spans:
            unit = self.units.get(span.sh_id) or self.unit(span.sh_id)
            if unit is not None:
                self._span(unit, span, span.end - span.start, now)

    def _span(self, unit: Unit, span: Any, count: int, now: float) -> None:
        new = count - span.duplicates
        unit.duplicates += span.duplicates
        if new <= 0:
            return
        last = span.last
        live = (span.duplicates == 0 and last["time"] != last["recv_time"]  # (equal: the client sent no time)
                and (unit.health is None or (unit.backlog_estimate(now) or 0) <= LIVE_BACKLOG))
        unit.stored += new
        unit.last_time, unit.last_recv = last["time"], last["recv_time"]
        self._track_seq(unit, span.first, last, new)
        if live:  # one sample per batch: the sender's newest reading, when it is not working off backlog
            unit.offsets.append(iso_seconds(last["recv_time"]) - iso_seconds(last["time"]))
        if unit.silent:
            unit.silent = False
            log.info("%s back after %s", unit.sh_id, duration(now - (unit.last_stored_at or now)))
        if unit.stalled:
            unit.stalled = False
            log.info("%s no longer stalled: readings arrive again", unit.sh_id)
        unit.last_stored_at = now

    @staticmethod
    def _track_seq(unit: Unit, first: dict, last: dict, new: int) -> None:
        session = last.get("session")
        if session is None or first.get("session") != session:
            unit.session, unit.seq = session, last.get("seq")
            return
        if session != unit.session:
            unit.session, unit.seq = session, None
        high = unit.seq
        base = first["seq"] - 1 if high is None else high
        missing = last["seq"] - base - new
        if missing > 0:
            unit.seq_holes += 1
            unit.seq_missing += missing
        if high is None or last["seq"] > high:
            unit.seq = last["seq"]

    def report(self, conn: Any, status: dict[str, Any], ip: str, now: float) -> None:
        """A sender's status line (already decoded): keep the fields we know, ignore the rest."""
        sh_id = status.get("sh_id")
        if conn.unit is None and type(sh_id) is str:
            self.attach(conn, sh_id, ip)
        unit = self.units.get(conn.unit) if conn.unit is not None else None
        if unit is None:
            return
        health = known_fields(status)
        previous = unit.health.get("backlog") if unit.health else None
        unit.previous_backlog, unit.stored_at_previous = previous, unit.stored_at_health
        unit.health, unit.health_at, unit.health_wall = health, now, time.time()
        unit.stored_at_health = unit.stored
        backlog = health.get("backlog")
        if (unit.connected and not unit.stalled and backlog is not None and previous is not None
                and backlog > previous and unit.stored == unit.stored_at_previous):
            unit.stalled = True
            log.warning("%s stalled: connected from %s, backlog %d -> %d at its last two reports, nothing new "
                        "stored since", unit.sh_id, unit.address, previous, backlog)

    # --- once a second ------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Advance the rate history and say which units fell silent."""
        if now >= self._next_bin:
            self._next_bin = max(self._next_bin + BIN_SECONDS, now)
            for unit in self.units.values():
                unit.totals.append(unit.stored)
        for unit in self.units.values():
            if unit.silent or unit.last_stored_at is None or now - unit.last_stored_at < self.silent_after:
                continue
            unit.silent = True
            backlog = unit.health.get("backlog") if unit.health else None
            log.warning("%s silent for %s; last reading %s from %s; %s", unit.sh_id,
                        duration(now - unit.last_stored_at), short_time(unit.last_time), unit.address or "?",
                        f"backlog {backlog} at its last report" if backlog is not None else "no status reports")

    # --- reading it -----------------------------------------------------------------------------
    def state(self, unit: Unit, now: float) -> tuple[str, str]:
        """(colour, why): red is silent or disconnected, amber late or backing up, green delivering."""
        quiet = None if unit.last_stored_at is None else now - unit.last_stored_at
        if not unit.connected:
            return "red", "disconnected"
        if unit.silent or (quiet is not None and quiet >= self.silent_after):
            return "red", "silent"
        if unit.stalled:
            return "amber", "stalled: backlog growing, nothing stored"
        if quiet is None:
            return "amber", "connected, nothing stored yet"
        if quiet >= self.late_after:
            return "amber", "late"
        backlog = unit.health.get("backlog") if unit.health else None
        if backlog is not None and unit.previous_backlog is not None and backlog > max(unit.previous_backlog,
                                                                                        LIVE_BACKLOG):
            return "amber", "backlog growing"
        return "green", "delivering"

    def snapshot(self, now: float, server: dict[str, Any]) -> dict[str, Any]:
        """The whole state as plain data (for /status.json, /metrics and the page)."""
        wall = time.time()
        units = [self._unit_view(unit, now, wall) for unit in sorted(list(self.units.values()), key=_sh_id)]
        return {"units": units, "server": {**server, "units_untracked": self.untracked}, "time": wall,
                "silent_after": self.silent_after}

    def _unit_view(self, unit: Unit, now: float, wall: float) -> dict[str, Any]:
        colour, why = self.state(unit, now)
        totals = list(unit.totals)
        offsets = list(unit.offsets)
        since_bin = now - (self._next_bin - BIN_SECONDS)
        recent = totals[-(60 // BIN_SECONDS) - 1:] if len(totals) > 1 else totals
        window = min((len(recent) - 1) * BIN_SECONDS + since_bin, now - unit.born)
        rate = (unit.stored - recent[0]) / window if recent and window > 0 else 0.0
        history = [(b - a) / BIN_SECONDS for a, b in zip(totals, totals[1:], strict=False)]
        health = dict(unit.health) if unit.health else None  # replaced whole by ``report``, never changed
        if health is not None and unit.health_at is not None:
            health["age_seconds"] = round(now - unit.health_at, 1)
            health["reported_timestamp"] = unit.health_wall
        return {
            "sh_id": unit.sh_id, "state": colour, "state_reason": why, "connected": unit.connected,
            "connections": unit.connections, "address": unit.address,
            "readings_total": unit.stored, "rate": round(rate, 3), "duplicates_total": unit.duplicates,
            "rejected_total": unit.rejected,
            "last_reading_time": unit.last_time, "last_received_time": unit.last_recv,
            "last_reading_timestamp": iso_seconds(unit.last_time) if unit.last_time else None,
            "last_received_timestamp": iso_seconds(unit.last_recv) if unit.last_recv else None,
            "seconds_since_reading": None if unit.last_stored_at is None else round(now - unit.last_stored_at, 1),
            "session": unit.session, "seq": unit.seq, "seq_holes": unit.seq_holes, "seq_missing": unit.seq_missing,
            "clock_offset_seconds": round(statistics.median(offsets), 4) if offsets else None,
            "silent": unit.silent, "stalled": unit.stalled, "sender": health,
            "rate_history": history, "rate_history_step_seconds": BIN_SECONDS,
        }


def _sh_id(unit: Unit) -> str:
    return unit.sh_id

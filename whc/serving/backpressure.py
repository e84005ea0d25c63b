"""Backpressure: what the server holds that is not on disk yet, and which clients are paused for it.

Received bytes wait for the committer. Past ``max_pending_bytes`` over all clients, or 4 MiB on
one connection, the server stops reading from that client (its TCP window closes, so it slows
down) until the committer has caught up to half of that.
"""

from __future__ import annotations

import selectors

from ..storage import Batch
from .connection import Connection

CONN_IN_FLIGHT = 4 * 2**20  # received-but-uncommitted bytes per connection before it is paused
ROW_OVERHEAD = 120  # bytes a staged row costs beyond its text (tuple, key, string header)


class Backpressure:
    """Counts bytes in flight per connection and in all; pauses and resumes reading."""

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self.pending = 0
        self.paused: set[Connection] = set()

    @property
    def full(self) -> bool:
        """All clients together hold more than ``max_pending_bytes``."""
        return self.pending > self.max_pending

    def submitted(self, conn: Connection, batch: Batch) -> None:
        """``batch`` goes to the committer. What it holds until committed: encoded rows (about the size
        of the input, plus their tuples) and rejects-log lines; this is what max_pending_bytes bounds."""
        batch.nbytes = batch.nbytes + ROW_OVERHEAD * batch.readings + sum(map(len, batch.rejects)) + 1
        conn.in_flight += batch.nbytes
        self.pending += batch.nbytes

    def committed(self, conn: Connection, batch: Batch) -> None:
        conn.in_flight -= batch.nbytes
        self.pending -= batch.nbytes

    def pause_if_needed(self, conn: Connection) -> None:
        """Stop reading from ``conn`` if it, or everyone together, holds too much."""
        if not conn.paused and (conn.in_flight > CONN_IN_FLIGHT or self.full):
            conn.paused = True
            self.paused.add(conn)
            conn.set_events(conn.events & ~selectors.EVENT_READ)

    def resume(self) -> None:
        """Read again from paused clients once the committer has caught up to half the limits."""
        if not self.paused or self.pending > self.max_pending // 2:
            return
        for conn in list(self.paused):
            if conn.in_flight <= CONN_IN_FLIGHT // 2:
                conn.paused = False
                self.paused.discard(conn)
                if not conn.closed and conn.closing_since is None:
                    conn.set_events(conn.events | selectors.EVENT_READ)

    def forget(self, conn: Connection) -> None:
        """``conn`` is closed."""
        self.paused.discard(conn)

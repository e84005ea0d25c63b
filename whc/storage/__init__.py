"""Storage: where accepted readings go, made durable before they are acknowledged.

``committer`` runs the group commit, ``sinks/`` holds one module per destination
(CSV by default), ``rejects`` keeps every refused line, ``dedup`` remembers the
highest ``seq`` stored per sender session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import Any

SessionKey = tuple[str, str]
Row = tuple[SessionKey | None, int, Any]
"""A reading as a sink encoded it: its (sh_id, session) key and seq (for dedup), and the payload to write.

Readings are encoded as soon as they are parsed, so what waits for the disk is compact."""


@dataclass(eq=False)
class UnitSpan:
    """Consecutive rows of one ``sh_id`` in a batch: where they start and end, their first and last reading."""

    sh_id: str
    start: int  # index of its first row in ``Batch.rows``
    first: Any  # the first reading (a dict), for the fleet's per-unit state
    last: Any = None  # the last reading
    end: int = 0  # index after its last row
    duplicates: int = 0  # set by the committer: rows of the span that were already stored


@dataclass
class Batch:
    """What one connection handed over in one go: readings, refused lines, and how far it got."""

    owner: Any  # the server's connection (set when submitted); opaque to storage
    last_line: int  # the connection's line count this batch brings it to
    nbytes: int  # bytes received for it (for backpressure accounting)
    rows: list[Row] = field(default_factory=list)
    rejects: list[bytes] = field(default_factory=list)  # encoded rejects-log lines
    spans: list[UnitSpan] = field(default_factory=list)  # which unit the rows belong to (usually one span)

    def add_spans(self, readings: list[Any], first_row: int) -> None:
        """Record which units the rows made of ``readings`` (from row ``first_row`` on) belong to."""
        start = 0
        for sh_id, run in groupby(map(_SH_ID, readings)):
            end = start + sum(1 for _ in run)
            last = self.spans[-1] if self.spans else None
            if last is not None and last.sh_id == sh_id and last.end == first_row + start:
                last.last, last.end = readings[end - 1], first_row + end  # the same unit's rows go on
            else:
                self.spans.append(UnitSpan(sh_id, first_row + start, readings[start], readings[end - 1],
                                           first_row + end))
            start = end


_SH_ID = itemgetter("sh_id")

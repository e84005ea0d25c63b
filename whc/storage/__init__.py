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
class RunRows:
    """The payload of a Row that holds a run: CSV lines of consecutive seqs, from the Row's seq on.

    (With no session, the Row's key is None and every line is new.) Sinks that store CSV lines
    (``Sink.takes_runs``) accept it; a run of N readings is one Row with one span of N.
    """

    lines: list[str]


@dataclass(eq=False)
class UnitSpan:
    """Consecutive rows of one ``sh_id`` in a batch: where they start and end, their first and last reading."""

    sh_id: str
    start: int  # index of its first row in ``Batch.rows``
    first: Any  # the first reading (a dict), for the fleet's per-unit state
    last: Any = None  # the last reading
    end: int = 0  # index after its last row (a run's span: 0 to its reading count; its batch holds it alone)
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

    @property
    def readings(self) -> int:
        """How many readings the rows hold (every row is in a span)."""
        return sum(span.end - span.start for span in self.spans)

    def add_run(self, sh_id: str, key: SessionKey | None, first_seq: int, lines: list[str], first: Any,
                last: Any) -> None:
        """Hold a run (see parsers/runs.py): its CSV lines as one Row, and one span of all its readings.

        A batch that holds a run holds no other rows (it may hold rejects)."""
        self.rows.append((key, first_seq, RunRows(lines)))
        self.spans.append(UnitSpan(sh_id, 0, first, last, len(lines)))

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

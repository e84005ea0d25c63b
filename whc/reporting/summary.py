"""Per-unit statistics: what pass 1 counts row by row, the gaps pass 2 finds, and the summary they make.

Memory per unit is fixed (two quantile sketches, a few numbers, the top gaps) plus a small record per
session (its last time and a ``SeqTracker``), whatever the number of rows.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter

from ..columns import SENSOR_GROUPS
from .seqcheck import SeqTracker
from .sketch import QuantileSketch
from .stream import Layout


@dataclass(frozen=True)
class Gap:
    """No reading of a unit for ``seconds`` after the reading at ``start``."""

    start: float
    seconds: float


@dataclass
class UnitSummary:
    """Everything the report says about one unit. None means n/a (the file has no such column)."""

    unit: str
    rows: int
    first: float
    last: float
    median_interval: float | None  # seconds between consecutive readings of one session
    sessions: int | None
    session_starts: tuple[float, ...]  # first time of each session, sorted
    missing_seq: int | None
    duplicate_seq: int | None
    unchecked_seq: int | None
    out_of_order: int  # rows whose time is before the previous row's of the same session
    offset_median_ms: float | None  # recv_time - time
    offset_max_ms: float | None
    groups: tuple[str, ...]  # sensor groups with values
    gap_threshold: float | None = None
    gaps: int = 0
    longest_gap: float | None = None
    top_gaps: tuple[Gap, ...] = ()

    @property
    def span(self) -> float:
        return self.last - self.first

    @property
    def mean_rate(self) -> float | None:
        """Readings per second over the whole span: rows / (last - first)."""
        return self.rows / self.span if self.span > 0 else None

    @property
    def achieved_rate(self) -> float | None:
        """The sampling rate while running: 1 / median interval."""
        return 1 / self.median_interval if self.median_interval else None


class _Session:
    __slots__ = ("first", "last", "seqs")

    def __init__(self, first: float) -> None:
        self.first = first
        self.last = first
        self.seqs: SeqTracker | None = None


class UnitAccumulator:
    """Pass 1 for one unit: counts, time range, intervals, sessions, seqs, clock offset, groups seen."""

    def __init__(self, unit: str, layout: Layout, parse_time: Callable[[str], float | None]) -> None:
        self.unit = unit
        self.rows = 0
        self.first = math.inf
        self.last = -math.inf
        self.out_of_order = 0
        self.intervals = QuantileSketch()
        self.offsets = QuantileSketch()
        self.offset_max = -math.inf
        self._sessions: dict[str, _Session] = {}
        self._session_at = layout.index("session")
        self._seq_at = layout.index("seq") if self._session_at is not None else None
        self._recv_at = layout.index("recv_time")
        self._parse_time = parse_time
        groups = layout.groups()
        self._unseen = [(group, [layout.names.index(name) for name in names]) for group, names in groups.items()]
        self._seen: set[str] = set()
        self._unseen_cells = _getter([i for _, indices in self._unseen for i in indices])

    def add(self, t: float, row: list[str]) -> None:
        """Count one row sampled at ``t`` (epoch seconds)."""
        self.rows += 1
        if t < self.first:
            self.first = t
        if t > self.last:
            self.last = t
        session = row[self._session_at] if self._session_at is not None else ""
        state = self._sessions.get(session)
        if state is None:
            state = self._sessions[session] = _Session(t)
        else:
            step = t - state.last
            if step < 0:
                self.out_of_order += 1
            else:
                self.intervals.add(step)
            state.last = t
        if session and self._seq_at is not None and row[self._seq_at]:
            self._add_seq(state, row[self._seq_at])
        if self._recv_at is not None and row[self._recv_at]:
            received = self._parse_time(row[self._recv_at])
            if received is not None:
                offset = (received - t) * 1000
                self.offsets.add(offset)
                if offset > self.offset_max:
                    self.offset_max = offset
        if self._unseen and any(self._unseen_cells(row)):
            self._look_for_groups(row)

    @staticmethod
    def _add_seq(state: _Session, text: str) -> None:
        try:
            seq = int(text)
        except ValueError:
            return
        if seq >= 0:
            if state.seqs is None:
                state.seqs = SeqTracker()
            state.seqs.add(seq)

    def _look_for_groups(self, row: list[str]) -> None:
        found = [entry for entry in self._unseen if any(row[i] for i in entry[1])]
        for entry in found:
            self._seen.add(entry[0])
            self._unseen.remove(entry)
        self._unseen_cells = _getter([i for _, indices in self._unseen for i in indices])

    def summary(self) -> UnitSummary:
        """The unit's summary without gaps (pass 2 adds them)."""
        named = {key: state for key, state in self._sessions.items() if key}
        trackers = [state.seqs for state in named.values() if state.seqs is not None]
        has_seq = bool(trackers)
        return UnitSummary(
            unit=self.unit,
            rows=self.rows,
            first=self.first,
            last=self.last,
            median_interval=self.intervals.median(),
            sessions=len(named) if named else None,
            session_starts=tuple(sorted(state.first for state in named.values())),
            missing_seq=sum(t.missing for t in trackers) if has_seq else None,
            duplicate_seq=sum(t.duplicates for t in trackers) if has_seq else None,
            unchecked_seq=sum(t.unchecked for t in trackers) if has_seq else None,
            out_of_order=self.out_of_order,
            offset_median_ms=self.offsets.median(),
            offset_max_ms=self.offset_max if self.offsets.count else None,
            groups=tuple(group for group in SENSOR_GROUPS if group in self._seen),
        )


def _getter(indices: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """A function returning the cells at ``indices`` of a row, always as a tuple."""
    return itemgetter(*indices, indices[0]) if indices else lambda row: ()


class GapFinder:
    """Pass 2 for one unit: jumps of its latest time by more than ``threshold`` seconds.

    Gaps are measured along the file: a row later than every earlier row of the unit by more than
    the threshold ends a gap. Readings written later that fall inside it (replayed out of order)
    do not shrink it.
    """

    def __init__(self, threshold: float, keep: int = 5) -> None:
        self.threshold = threshold
        self.count = 0
        self.longest = 0.0
        self._keep = keep
        self._top: list[tuple[float, float]] = []  # (seconds, start), a min-heap of the longest
        self._latest: float | None = None

    def add(self, t: float) -> None:
        if self._latest is None:
            self._latest = t
            return
        step = t - self._latest
        if step > 0:
            if step > self.threshold:
                self.count += 1
                self.longest = max(self.longest, step)
                heapq.heappush(self._top, (step, self._latest))
                if len(self._top) > self._keep:
                    heapq.heappop(self._top)
            self._latest = t

    def top(self) -> tuple[Gap, ...]:
        """The longest gaps, longest first."""
        return tuple(Gap(start, seconds) for seconds, start in sorted(self._top, reverse=True))


def gap_threshold(summary: UnitSummary, factor: float) -> float | None:
    """``factor`` median intervals (or mean intervals when most readings share a time stamp)."""
    if summary.median_interval:
        return factor * summary.median_interval
    if summary.rows > 1 and summary.span > 0:
        return factor * summary.span / (summary.rows - 1)
    return None

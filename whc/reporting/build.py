"""Two passes over a CSV make a ``Report``.

Pass 1 counts each unit's rows, time range, intervals (for the median), sessions, seqs, times going
backwards and clock offsets, and notes which sensor groups have values. Pass 2, which needs the
median interval and the time span from pass 1, finds the gaps and, for plots, fills each unit's
fixed set of time buckets. Neither pass keeps rows: memory depends on the number of units and
sessions, not on the length of the file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .progress import Progress
from .stream import CsvStream, Invalid, Layout, Stream, TimeParser
from .summary import GapFinder, UnitAccumulator, UnitSummary, gap_threshold

if TYPE_CHECKING:
    from .envelope import Envelope

PASSES = 2


@dataclass(frozen=True)
class Options:
    """What to report on and how."""

    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    units: frozenset[str] | None = None
    gap_factor: float = 5.0
    plots: bool = False  # collect the plot envelopes (needs numpy)
    buckets: int = 2000
    top_gaps: int = 5


@dataclass
class Report:
    """The summary of one file."""

    path: Path
    size: int
    layout: Layout
    options: Options
    units: list[UnitSummary]
    invalid: Invalid
    outside_window: int = 0
    other_units: int = 0
    dateless: bool = False
    envelopes: dict[str, Envelope] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(unit.rows for unit in self.units)


@dataclass
class _Skipped:
    outside_window: int = 0
    other_units: int = 0


def build_report(path: Path | Stream, options: Options = Options(), progress: Progress | None = None) -> Report:
    """Read ``path`` twice and summarise it per unit (see the module docstring)."""
    stream = CsvStream(Path(path)) if isinstance(path, (str, Path)) else path
    try:
        accumulators, skipped, invalid, dateless = _pass_one(stream, options, progress)
        summaries = [accumulators[unit].summary() for unit in sorted(accumulators)]
        envelopes = _pass_two(stream, options, summaries, progress)
    finally:
        if progress is not None:
            progress.close()
    return Report(stream.path, stream.size, stream.layout, options, summaries, invalid, skipped.outside_window,
                  skipped.other_units, dateless, envelopes)


def _pass_one(stream: Stream, options: Options, progress: Progress | None
              ) -> tuple[dict[str, UnitAccumulator], _Skipped, Invalid, bool]:
    parser, recv_parser, skipped = TimeParser(), TimeParser(), _Skipped()
    accumulators: dict[str, UnitAccumulator] = {}
    for unit, t, row in _selected(stream, options, parser, skipped, progress, 1):
        accumulator = accumulators.get(unit)
        if accumulator is None:
            accumulator = accumulators[unit] = UnitAccumulator(unit, stream.layout, recv_parser.parse)
        accumulator.add(t, row)
    return accumulators, skipped, stream.invalid, parser.dateless


def _pass_two(stream: Stream, options: Options, summaries: list[UnitSummary],
              progress: Progress | None) -> dict[str, Envelope]:
    finders: dict[str, GapFinder] = {}
    for summary in summaries:
        threshold = gap_threshold(summary, options.gap_factor)
        finders[summary.unit] = GapFinder(math.inf if threshold is None else threshold, options.top_gaps)
    collector = None
    if options.plots:
        from .envelope import EnvelopeCollector

        collector = EnvelopeCollector(stream.layout, summaries, options.buckets)
    for unit, t, row in _selected(stream, options, TimeParser(), _Skipped(), progress, 2):
        finders[unit].add(t)
        if collector is not None:
            collector.add(unit, t, row)
    for summary in summaries:
        finder = finders[summary.unit]
        summary.gap_threshold = None if math.isinf(finder.threshold) else finder.threshold
        summary.gaps = finder.count
        summary.longest_gap = finder.longest if finder.count else None
        summary.top_gaps = finder.top()
    return collector.finish() if collector is not None else {}


def _selected(stream: Stream, options: Options, parser: TimeParser, skipped: _Skipped,
              progress: Progress | None, number: int) -> Iterator[tuple[str, float, list[str]]]:
    """(unit, time, row) of every usable row in the window; the others are counted."""
    if progress is not None:
        progress.start_pass(number)
    time_at, unit_at = stream.layout.index("time"), stream.layout.index("sh_id")
    wanted = options.units
    since = -math.inf if options.since is None else options.since
    until = math.inf if options.until is None else options.until
    parse = parser.parse
    for row in stream.rows(progress.update if progress is not None else None):
        unit = row[unit_at]
        if wanted is not None and unit not in wanted:
            skipped.other_units += 1
            continue
        t = parse(row[time_at])
        if t is None:
            stream.invalid.add("unparsable time", stream.line)
            continue
        if not since <= t < until:
            skipped.outside_window += 1
            continue
        yield unit, t, row

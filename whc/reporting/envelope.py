"""Downsampling for the plots: per unit, a fixed number of time buckets holding min, max and mean.

The bucket width is the unit's time span (known after pass 1) divided by the number of buckets
(2,000 by default), so each unit costs buckets x columns x 4 numbers whatever the length of the
recording, and a one-sample spike still shows as its bucket's max. Rows are buffered as text for at
most ``BATCH_CELLS`` cells over all units, then converted with numpy a batch at a time.
Imported only when plots are made (numpy comes with matplotlib).
"""

from __future__ import annotations

import math
from operator import itemgetter

import numpy as np

from .stream import Layout
from .summary import UnitSummary

BATCH_CELLS = 1 << 16


class Envelope:
    """Min, max, sum and count of each column in each time bucket of one unit."""

    def __init__(self, columns: tuple[str, ...], start: float, end: float, buckets: int = 2000) -> None:
        self.columns = columns
        self.start = start
        self.buckets = buckets if end > start else 1
        self.width = (end - start) / self.buckets if end > start else 1.0
        shape = (self.buckets, len(columns))
        self.min = np.full(shape, np.inf)
        self.max = np.full(shape, -np.inf)
        self.sum = np.zeros(shape)
        self.count = np.zeros(shape, dtype=np.int64)
        self.rows = np.zeros(self.buckets, dtype=np.int64)
        self.time_sum = np.zeros(self.buckets)  # seconds after ``start``, for each bucket's mean time

    def add(self, times: np.ndarray, values: np.ndarray) -> None:
        """Fold in readings: ``times`` (n,) epoch seconds, ``values`` (n, columns) with NaN for empty cells."""
        index = np.clip(((times - self.start) / self.width).astype(np.int64), 0, self.buckets - 1)
        order = np.argsort(index, kind="stable")
        index, values, times = index[order], values[order], times[order]
        starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
        where = index[starts]
        self.rows[where] += np.diff(np.r_[starts, len(index)])
        self.time_sum[where] += np.add.reduceat(times - self.start, starts)
        present = ~np.isnan(values)
        self.min[where] = np.fmin(self.min[where], np.fmin.reduceat(values, starts, axis=0))
        self.max[where] = np.fmax(self.max[where], np.fmax.reduceat(values, starts, axis=0))
        self.sum[where] += np.add.reduceat(np.where(present, values, 0.0), starts, axis=0)
        self.count[where] += np.add.reduceat(present.astype(np.int64), starts, axis=0)

    def series(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean time (epoch seconds) of each bucket with readings, and its min, max and mean (NaN: none)."""
        used = self.rows > 0
        count = self.count[used]
        empty = count == 0
        mean = np.divide(self.sum[used], count, out=np.full(count.shape, np.nan), where=~empty)
        low = np.where(empty, np.nan, self.min[used])
        high = np.where(empty, np.nan, self.max[used])
        return self.start + self.time_sum[used] / self.rows[used], low, high, mean


class EnvelopeCollector:
    """Feeds each unit's envelope from pass 2's rows, buffering cells as text in bounded batches."""

    def __init__(self, layout: Layout, summaries: list[UnitSummary], buckets: int = 2000) -> None:
        groups = layout.groups()
        self.envelopes: dict[str, Envelope] = {}
        self._getters: dict[str, itemgetter] = {}
        self._times: dict[str, list[float]] = {}
        self._cells: dict[str, list[str]] = {}
        self._buffered = 0
        for summary in summaries:
            columns = tuple(name for group in summary.groups for name in groups[group])
            if not columns:
                continue
            self.envelopes[summary.unit] = Envelope(columns, summary.first, summary.last, buckets)
            self._getters[summary.unit] = itemgetter(*(layout.names.index(c) for c in columns), 0)
            self._times[summary.unit] = []
            self._cells[summary.unit] = []

    def add(self, unit: str, t: float, row: list[str]) -> None:
        """Buffer one row of ``unit`` sampled at ``t``."""
        getter = self._getters.get(unit)
        if getter is None:
            return
        cells = getter(row)[:-1]  # the extra index 0 makes itemgetter return a tuple even for one column
        self._times[unit].append(t)
        self._cells[unit].extend(cells)
        self._buffered += len(cells)
        if self._buffered >= BATCH_CELLS:
            self.flush()

    def flush(self) -> None:
        """Convert and fold in everything buffered."""
        for unit, times in self._times.items():
            if times:
                envelope = self.envelopes[unit]
                values = _floats(self._cells[unit]).reshape(len(times), len(envelope.columns))
                envelope.add(np.asarray(times), values)
                times.clear()
                self._cells[unit].clear()
        self._buffered = 0

    def finish(self) -> dict[str, Envelope]:
        self.flush()
        return self.envelopes


def _floats(cells: list[str]) -> np.ndarray:
    """Cells as floats; empty or unreadable cells (and infinities) become NaN."""
    try:
        values = np.array(cells, dtype=np.float64)
    except ValueError:
        values = np.array([_float(cell) for cell in cells], dtype=np.float64)
    values[~np.isfinite(values)] = np.nan
    return values


def _float(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return math.nan

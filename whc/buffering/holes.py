"""Ranges of positions known to be lost (damaged or missing), so each is counted exactly once."""

from __future__ import annotations


class Holes:
    """Disjoint, sorted ``[start, end)`` ranges of positions no record holds any more."""

    def __init__(self, ranges: object = ()) -> None:
        self.ranges: list[list[int]] = []
        if isinstance(ranges, list):
            for item in ranges:
                if (isinstance(item, list) and len(item) == 2 and all(type(n) is int for n in item)
                        and 0 <= item[0] < item[1]):
                    self.add(item[0], item[1])

    def add(self, start: int, end: int) -> int:
        """Mark ``[start, end)`` lost; return how many of its positions were not known lost before."""
        if end <= start:
            return 0
        new = (end - start) - self.overlap(start, end)
        merged = [start, end]
        kept = []
        for r in self.ranges:
            if r[1] < merged[0] or r[0] > merged[1]:
                kept.append(r)
            else:
                merged = [min(r[0], merged[0]), max(r[1], merged[1])]
        kept.append(merged)
        self.ranges = sorted(kept)
        return new

    def overlap(self, start: int, end: int) -> int:
        """How many positions of ``[start, end)`` are known lost."""
        return sum(max(0, min(end, r[1]) - max(start, r[0])) for r in self.ranges)

    def prune(self, below: int) -> None:
        """Forget what lies below ``below`` (acknowledged or dropped: never read again)."""
        self.ranges = [[max(r[0], below), r[1]] for r in self.ranges if r[1] > below]

"""Missing and duplicated ``seq`` numbers of one (unit, session), in bounded memory.

The server stores each session's readings in increasing ``seq`` order, so the usual row is simply
above the highest seen. The tracker keeps the highest seq, the lowest, the count of distinct seqs
and the holes (runs of seqs skipped over): at most ``MAX_HOLES`` of them, the oldest forgotten first.
A seq below the highest fills its hole if it is in one (a late arrival), and is a duplicate if it is
not. Limits: a seq that arrives after its hole was forgotten, or below the session's first row,
cannot be told from a duplicate; it is counted as ``unchecked`` and assumed new. Missing seqs after
the last row of a session (a tail that never arrived) cannot be seen at all.
"""

from __future__ import annotations

MAX_HOLES = 64


class SeqTracker:
    """Holes and repeats among the seq numbers of one session."""

    __slots__ = ("rows", "distinct", "low", "high", "unchecked", "_holes", "_known_from")

    def __init__(self) -> None:
        self.rows = 0
        self.distinct = 0
        self.low = -1
        self.high = -1
        self.unchecked = 0
        self._holes: list[list[int]] = []  # [first, last] missing seqs, oldest first
        self._known_from = 0  # every seq from here to ``high`` is either seen or in a hole

    def add(self, seq: int) -> None:
        """Count one row's seq."""
        self.rows += 1
        if seq > self.high:
            if self.high < 0:
                self.low = self._known_from = seq
            elif seq > self.high + 1:
                self._holes.append([self.high + 1, seq - 1])
                if len(self._holes) > MAX_HOLES:
                    self._known_from = self._holes.pop(0)[1] + 1
            self.high = seq
            self.distinct += 1
        elif seq >= self._known_from:
            self._fill(seq)
        else:
            self.unchecked += 1
            self.distinct += 1
            self.low = min(self.low, seq)

    def _fill(self, seq: int) -> None:
        for at, (first, last) in enumerate(self._holes):
            if first <= seq <= last:
                self.distinct += 1
                parts = [part for part in ([first, seq - 1], [seq + 1, last]) if part[0] <= part[1]]
                self._holes[at:at + 1] = parts
                if len(self._holes) > MAX_HOLES:
                    self._known_from = self._holes.pop(0)[1] + 1
                return
        # not in a hole: seen before, a duplicate (rows - distinct counts it)

    @property
    def missing(self) -> int:
        """Seqs between the lowest and the highest seen that never came."""
        return max(0, self.high - self.low + 1 - self.distinct) if self.rows else 0

    @property
    def duplicates(self) -> int:
        """Rows whose seq had been seen before in this session."""
        return self.rows - self.distinct

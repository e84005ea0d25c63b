"""High-water marks: the highest ``seq`` stored per (sh_id, session), to absorb resends."""

from __future__ import annotations

from . import SessionKey


class HighWaterMarks:
    """Committed marks plus the ones staged by an uncommitted batch."""

    def __init__(self, marks: dict[SessionKey, int] | None = None) -> None:
        self.marks: dict[SessionKey, int] = marks or {}
        self._staged: dict[SessionKey, int] = {}

    def is_new(self, key: SessionKey | None, seq: int) -> bool:
        """True (and staged) if the row has no session or a seq above its session's mark."""
        if key is None:
            return True
        mark = self._staged.get(key)
        if mark is None:
            mark = self.marks.get(key, -1)
        if seq <= mark:
            return False
        self._staged[key] = seq
        return True

    def resent_in_run(self, key: SessionKey | None, first_seq: int, count: int) -> int:
        """How many rows of a run (seqs ``first_seq`` on, consecutive) lead it as resends; the rest is staged.

        The same as asking ``is_new`` of each row in turn."""
        if key is None:
            return 0
        mark = self._staged.get(key)
        if mark is None:
            mark = self.marks.get(key, -1)
        resent = min(count, max(0, mark - first_seq + 1))
        if resent < count:
            self._staged[key] = first_seq + count - 1
        return resent

    def commit(self) -> None:
        self.marks.update(self._staged)
        self._staged.clear()

    def observe(self, sh_id: str, session: str, seq: int) -> None:
        """Record a stored row (used when rebuilding from the file)."""
        key = (sh_id, session)
        if seq > self.marks.get(key, -1):
            self.marks[key] = seq

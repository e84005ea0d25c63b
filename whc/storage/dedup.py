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

    def commit(self) -> None:
        self.marks.update(self._staged)
        self._staged.clear()

    def observe(self, sh_id: str, session: str, seq: int) -> None:
        """Record a stored row (used when rebuilding from the file)."""
        key = (sh_id, session)
        if seq > self.marks.get(key, -1):
            self.marks[key] = seq

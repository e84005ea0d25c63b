"""High-water marks: the highest ``seq`` stored per (sh_id, session), to absorb resends."""

from __future__ import annotations

from ..protocol import Reading

SessionKey = tuple[str, str]


class HighWaterMarks:
    """Committed marks plus the ones staged by an uncommitted batch."""

    def __init__(self, marks: dict[SessionKey, int] | None = None) -> None:
        self.marks: dict[SessionKey, int] = marks or {}
        self._staged: dict[SessionKey, int] = {}

    def is_new(self, reading: Reading) -> bool:
        """True (and staged) if the reading has no seq or a seq above its session's mark."""
        seq = reading.get("seq")
        if seq is None:
            return True
        key = (reading["sh_id"], reading["session"])
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

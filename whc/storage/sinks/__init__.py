"""Sinks: one module per destination, chosen explicitly by the ``sink`` setting."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from ...protocol import Reading


class Sink(ABC):
    """Stores readings; ``stage`` then ``commit`` (durable, all-or-nothing, retryable)."""

    name: str

    @abstractmethod
    def stage(self, readings: Iterable[Reading]) -> int:
        """Stage readings for the next commit; return how many were duplicates (not staged)."""

    @abstractmethod
    def commit(self) -> int:
        """Make everything staged durable and return how many rows that was; StorageError keeps it staged."""

    def checkpoint(self) -> None:  # noqa: B027 - optional hook
        """Persist cheap-to-rebuild state (called now and then after a commit)."""

    @abstractmethod
    def close(self) -> None:
        """Checkpoint and release files or connections."""

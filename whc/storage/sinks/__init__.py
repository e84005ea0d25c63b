"""Sinks: one module per destination, chosen explicitly by the ``sink`` setting."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from ...protocol import Reading
from .. import Row


class Sink(ABC):
    """Stores readings; ``stage`` then ``commit`` (durable, all-or-nothing, retryable)."""

    name: str

    @staticmethod
    @abstractmethod
    def encode(reading: Reading) -> Row:
        """Turn a validated reading into the compact row this sink stages (called as lines arrive)."""

    @abstractmethod
    def stage(self, rows: Iterable[Row]) -> int:
        """Stage rows for the next commit; return how many were duplicates (not staged)."""

    @abstractmethod
    def commit(self) -> int:
        """Make everything staged durable and return how many rows that was; StorageError keeps it staged."""

    @abstractmethod
    def describe(self) -> str:
        """Where the rows go, for the log (never a password)."""

    def checkpoint(self) -> None:  # noqa: B027 - optional hook
        """Persist cheap-to-rebuild state (called now and then after a commit)."""

    @abstractmethod
    def close(self) -> None:
        """Checkpoint and release files or connections."""

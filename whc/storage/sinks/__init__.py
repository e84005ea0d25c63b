"""Sinks: one module per destination, chosen explicitly by the ``sink`` setting."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from ...columns import NAMES
from ...protocol import Reading
from .. import Row


def cells(reading: Reading, null: str) -> list[str]:
    """The reading's values as text in column order (numbers as sent), ``null`` where there is none.

    (A reading's keys are column names: ``protocol.parse_reading`` moves any other key into ``extra``.)
    """
    return [null if value is None else value if type(value) is not int else str(value)
            for value in map(reading.get, NAMES)]


class Sink(ABC):
    """Stores readings; ``stage`` then ``commit`` (durable, all-or-nothing, retryable)."""

    name: str
    commit_duplicates: int = 0  # resends the last commit found (for sinks that learn it only at commit)

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

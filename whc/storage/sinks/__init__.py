"""Sinks: one module per destination, chosen explicitly by the ``sink`` setting from ``SINKS``.

A sink's module is imported only when it is chosen (so psycopg only for PostgreSQL).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ...columns import NAMES
from ...protocol import Reading
from .. import Row

if TYPE_CHECKING:
    from ...config import Config
    from ..rejects import RejectsLog

# the ``sink`` setting -> "module:class"
SINKS: dict[str, str] = {
    "csv": "whc.storage.sinks.csv:CsvSink",
    "postgres": "whc.storage.sinks.postgres:PostgresSink",
}

def cells(reading: Reading, null: str) -> list[str]:
    """The reading's values as text in column order (numbers as sent), ``null`` where there is none.

    (A reading's keys are column names: ``protocol.parse_reading`` moves any other key into ``extra``.)
    """
    return [null if value is None else value if type(value) is not int else str(value)
            for value in map(reading.get, NAMES)]


def row_encoder(payload: Callable[[Reading], object]) -> Callable[[Reading], Row]:
    """A sink's ``encode``: the reading's dedup key and seq, with ``payload`` (what the sink writes)."""

    def encode(reading: Reading) -> Row:
        session = reading.get("session")
        key = None if session is None else (reading["sh_id"], session)
        return key, reading.get("seq", 0), payload(reading)

    return encode


class Sink(ABC):
    """Stores readings; ``stage`` then ``commit`` (durable, all-or-nothing, retryable).

    Subclasses set ``name`` and ``encode`` (``staticmethod(row_encoder(...))``) and implement
    ``from_config``, ``stage``, ``commit``, ``describe`` and ``close``; ``checkpoint`` is optional.
    """

    name: str
    commit_duplicates: int = 0  # resends the last commit found (for sinks that learn it only at commit)
    takes_runs = False  # ``stage`` takes rows holding runs (``RunRows``: CSV lines, see parsers/runs.py)

    @classmethod
    @abstractmethod
    def from_config(cls, config: Config, rejects: RejectsLog) -> Sink:
        """The sink as ``config`` describes it (``rejects`` takes damaged rows a sink finds at start)."""

    encode: Callable[[Reading], Row]  # a validated reading into the compact row this sink stages, as lines arrive

    @abstractmethod
    def stage(self, rows: Iterable[Row]) -> int:
        """Stage rows for the next commit; return how many were duplicates (not staged)."""

    @abstractmethod
    def commit(self) -> int:
        """Make everything staged durable and return how many rows that was; StorageError keeps it staged."""

    @abstractmethod
    def describe(self) -> str:
        """Where the rows go, for the log (never a password)."""

    def known_units(self) -> set[str]:
        """The sh_ids this sink holds readings of, as far as it knows without a query (for the live view)."""
        return set()

    def checkpoint(self) -> None:  # noqa: B027 - optional hook
        """Persist cheap-to-rebuild state (called now and then after a commit)."""

    def maintain(self) -> None:  # noqa: B027 - optional hook
        """Housekeeping between commits while idle (e.g. closing a file whose hour is over)."""

    def reopen(self) -> None:  # noqa: B027 - optional hook
        """Close and reopen files by name (SIGHUP, after an external logrotate)."""

    @abstractmethod
    def close(self) -> None:
        """Checkpoint and release files or connections."""


def open_sink(config: Config, rejects: RejectsLog) -> Sink:
    """The sink the ``sink`` setting names (config validation has checked the name)."""
    module_name, class_name = SINKS[config["sink"]].split(":")
    return getattr(importlib.import_module(module_name), class_name).from_config(config, rejects)

"""Reading a whc CSV as a stream: its layout, its times, and its rows, in bounded memory.

Rows are read a megabyte of lines at a time and handed out one by one; nothing is kept.
Rows with the wrong number of cells are counted (with the first line number) and skipped.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, Protocol

from ..columns import COLUMNS, NAMES, ORIGINAL_HEADER, SENSOR_GROUPS
from ..exc import ReportError
from ..protocol import format_time as protocol_time

CHUNK_BYTES = 1 << 20
DAY = 86400.0


@dataclass(frozen=True)
class Layout:
    """Which column is where in one file."""

    names: tuple[str, ...]
    has_header: bool

    @property
    def width(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int | None:
        """Position of a column, or None if the file has no such column."""
        return self.names.index(name) if name in self.names else None

    def groups(self) -> dict[str, tuple[str, ...]]:
        """Sensor groups this file has columns for, each with its columns, in the order of whc.columns."""
        found: dict[str, tuple[str, ...]] = {}
        for group in SENSOR_GROUPS:
            names = tuple(c.name for c in COLUMNS if c.group == group and c.name in self.names)
            if names:
                found[group] = names
        return found


def open_text(path: Path) -> tuple[io.TextIOWrapper, io.BufferedReader]:
    """``path`` as text (gunzipped if it ends in .gz) and the raw file under it (whose ``tell`` is progress)."""
    raw = open(path, "rb")  # noqa: SIM115 - closed with the text wrapper
    binary = gzip.GzipFile(fileobj=raw, mode="rb") if path.suffix == ".gz" else raw
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")
    return text, raw


def read_layout(path: Path) -> Layout:
    """The layout of ``path`` from its first line: a header naming ``time`` and ``sh_id``, or a first reading."""
    try:
        text, raw = open_text(path)
        with raw, text:
            first = next(csv.reader([text.readline()]), [])
    except (OSError, EOFError) as exc:
        raise ReportError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not first:
        raise ReportError(f"{path}: empty file, no header")
    if "time" in first and "sh_id" in first:
        return Layout(tuple(cell.strip() for cell in first), True)
    if TimeParser().parse(first[0]) is not None:  # no header: the server's layout, or the first version's
        if len(first) == len(NAMES):
            return Layout(NAMES, False)
        if len(first) == len(ORIGINAL_HEADER):
            return Layout(ORIGINAL_HEADER, False)
    raise ReportError(f"{path}: not a whc CSV (the first line is neither a header with time and sh_id "
                      f"nor a reading of {len(ORIGINAL_HEADER)} or {len(NAMES)} cells)")


class TimeParser:
    """Turns time cells into seconds since the epoch (UTC), fast for the server's own form.

    ``2026-11-24T12:00:00.123456Z`` takes a fast path (the minute is cached, as rows are in time order);
    any other ISO 8601 date-time goes through ``datetime.fromisoformat`` (no offset means UTC). A time of
    day alone (``12:00:00``, the first version's form) is placed on day 0 (1970-01-01), moving to the next
    day whenever the clock falls back by more than 12 hours; ``dateless`` then becomes True.
    """

    def __init__(self) -> None:
        self._minute = ""
        self._minute_start = 0.0
        self._day = 0
        self._last_of_day = -1.0
        self.dateless = False

    def parse(self, text: str) -> float | None:
        """Seconds since the epoch, or None if ``text`` is not a time."""
        if len(text) > 19 and text[-1] == "Z" and text[10] == "T" and text[16] == ":" and text[17:19].isdigit():
            minute = text[:16]
            if minute != self._minute:
                try:
                    start = datetime.fromisoformat(minute + ":00+00:00").timestamp()
                except ValueError:
                    return None
                self._minute, self._minute_start = minute, start
            try:
                seconds = float(text[17:-1])
            except ValueError:
                return None
            return self._minute_start + seconds if 0 <= seconds < 61 else None
        return self._parse_slow(text)

    def _parse_slow(self, text: str) -> float | None:
        text = text.strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return self._parse_time_of_day(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()

    def _parse_time_of_day(self, text: str) -> float | None:
        if len(text) < 5 or text[2] != ":":
            return None
        try:
            clock = time.fromisoformat(text)
        except ValueError:
            return None
        of_day = clock.hour * 3600 + clock.minute * 60 + clock.second + clock.microsecond / 1e6
        if of_day < self._last_of_day - DAY / 2:
            self._day += 1
        self._last_of_day = of_day
        self.dateless = True
        return self._day * DAY + of_day


def parse_window_time(text: str) -> float:
    """An ISO 8601 date or date-time for --since/--until (no offset means UTC), as epoch seconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r} (e.g. 2026-11-24 or 2026-11-24T12:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def display_time(seconds: float, dateless: bool = False, digits: int = 0) -> str:
    """``2026-11-24 12:00:00`` (UTC) with ``digits`` decimals; the time of day alone for dateless files."""
    moment = datetime.fromtimestamp(seconds, UTC)
    text = moment.strftime("%H:%M:%S" if dateless else "%Y-%m-%d %H:%M:%S")
    if digits:
        text += f".{moment.microsecond:06d}"[: digits + 1]
    if dateless and seconds >= DAY:
        text = f"day {int(seconds // DAY) + 1} {text}"
    return text


def iso_time(seconds: float, dateless: bool = False) -> str:
    """ISO 8601 UTC with microseconds, the CSV's own form (the time of day alone for dateless files)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%H:%M:%S.%f") if dateless else protocol_time(moment)


@dataclass
class Invalid:
    """Rows that could not be used, by reason, with the line of the first one."""

    counts: dict[str, int] = field(default_factory=dict)
    first_line: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, line: int) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.first_line.setdefault(reason, line)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class CsvStream:
    """The rows of one CSV, read again on each call to ``rows`` (one call per pass)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.layout = read_layout(path)
        self.size = path.stat().st_size
        self.invalid = Invalid()
        self._reader: object = None
        self._offset = 0

    @property
    def line(self) -> int:
        """Line number (1-based, header included) of the last row handed out."""
        return getattr(self._reader, "line_num", 0) + self._offset

    def rows(self, on_progress: Callable[[int], None] | None = None) -> Iterator[list[str]]:
        """Every row with the layout's number of cells; others are counted in ``self.invalid`` (reset per call).

        ``on_progress`` gets the bytes read so far, about once a megabyte.
        """
        self.invalid = Invalid()
        width = self.layout.width
        file, raw = open_text(self.path)
        with raw, file:
            if self.layout.has_header:
                file.readline()
            reader = self._reader = csv.reader(chunked_lines(file, raw, on_progress))
            self._offset = 1 if self.layout.has_header else 0
            for row in reader:
                if len(row) == width:
                    yield row
                elif row:  # a blank line is no reading and no harm
                    self.invalid.add("wrong number of cells", self.line)


class Stream(Protocol):
    """What a report reads: one CSV, several (``files.MultiStream``) or a table (``pgstream.PostgresStream``)."""

    path: Path
    size: int
    layout: Layout
    invalid: Invalid

    @property
    def line(self) -> int: ...

    def rows(self, on_progress: Callable[[int], None] | None = None) -> Iterator[list[str]]: ...


def chunked_lines(file: Any, raw: Any, on_progress: Callable[[int], None] | None) -> Iterator[str]:
    """The lines of ``file``, read a chunk at a time; ``on_progress`` gets ``raw``'s byte position per chunk."""
    while chunk := file.readlines(CHUNK_BYTES):
        if on_progress is not None:
            on_progress(raw.tell())
        yield from chunk

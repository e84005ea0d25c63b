"""Several CSVs as one stream: the active file with its closed siblings, or any paths and globs.

Files written by whc servers are merged on ``recv_time`` (the server's receive time, in the
order they were stored), a few rows at a time from each file; a file is opened only when the merge
reaches its first row, so only files that overlap in time are open at once and memory stays bounded.
The files of one server never overlap, so their merge is the same row order as one long file. Files without
``recv_time`` (the first version's) are read one after the other, in the order of their first time.
"""

from __future__ import annotations

import csv
import glob
import heapq
from collections.abc import Callable, Iterator
from pathlib import Path

from ..exc import ReportError
from ..storage.csvnames import active_alias, closed_files, looks_closed
from .stream import CsvStream, Invalid, Layout, TimeParser, chunked_lines, open_text

_GLOB_CHARS = set("*?[")
_NOT_CSV = (".state", ".tmp", ".new", ".jsonl")  # the server's other files, which a glob may catch


def expand(arguments: list[str]) -> list[Path]:
    """The files to report on: globs expanded; a CSV by its configured name brings its closed siblings.

    ``whc_data.csv`` means its closed files (``whc_data-<stamp>.csv[.gz]``), ``whc_data-active.csv``
    if there is one, and itself; a closed file, a ``.gz`` or a glob means just what it names.
    """
    found: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if _GLOB_CHARS & set(argument) and not path.exists():
            matches = sorted(Path(match) for match in glob.glob(argument) if not match.endswith(_NOT_CSV))
            if not matches:
                raise ReportError(f"{argument}: no file matches")
            found.extend(matches)
        elif path.suffix == ".gz" or looks_closed(path.name):
            found.append(path)
        else:
            alias = active_alias(path)
            found.extend([*closed_files(path), *([alias] if alias.exists() else []), path])
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def open_stream(arguments: list[str]) -> CsvStream | MultiStream:
    """One CsvStream when there is one file (today's behaviour), else a MultiStream."""
    paths = expand(arguments)
    if not paths:
        raise ReportError("no files to report on")
    for path in paths:
        if not path.exists():
            raise ReportError(f"{path}: no such file")
    if len(paths) == 1:
        return CsvStream(paths[0])
    return MultiStream(paths, Path(arguments[0]) if len(arguments) == 1 else paths[-1])


class MultiStream:
    """The rows of several CSVs as one stream, read again on each call to ``rows``.

    Each row is given in the columns of ``layout`` (the union of the files' columns); ``line``
    is the line within the file the last row came from.
    """

    def __init__(self, paths: list[Path], path: Path) -> None:
        self.paths = paths
        self.path = path  # names the report and where it goes
        self.streams = [CsvStream(p) for p in paths]
        self.size = sum(stream.size for stream in self.streams)
        self.layout = _union([stream.layout for stream in self.streams])
        self.invalid = Invalid()
        self.line = 0
        self.merged = all("recv_time" in stream.layout.names for stream in self.streams)
        if self.merged:
            self._first_keys = [_first_cell(stream, "recv_time") for stream in self.streams]
        else:
            self.streams.sort(key=_first_time)

    def rows(self, on_progress: Callable[[int], None] | None = None) -> Iterator[list[str]]:
        """Every row with its file's number of cells, in time order; others are counted in ``self.invalid``."""
        self.invalid = Invalid()
        done = [0] * len(self.streams)

        def progress_of(at: int) -> Callable[[int], None] | None:
            if on_progress is None:
                return None

            def report(nbytes: int) -> None:
                done[at] = nbytes
                on_progress(sum(done))

            return report

        sources = [self._rows_of(at, stream, progress_of(at)) for at, stream in enumerate(self.streams)]
        if self.merged:
            yield from self._merge(sources)
        else:
            for source in sources:
                yield from source

    def _merge(self, sources: list[Iterator[list[str]]]) -> Iterator[list[str]]:
        """Rows of all files by receive time (ties: the earlier file first), opening a file only once the
        merge reaches its first row, so only files that overlap in time are open together."""
        recv_at = self.layout.names.index("recv_time")
        waiting = sorted(range(len(sources)), key=lambda at: (self._first_keys[at], at))
        heap: list[tuple[str, int, list[str]]] = []
        next_of = 0
        while heap or next_of < len(waiting):
            while next_of < len(waiting) and (not heap or self._first_keys[waiting[next_of]] <= heap[0][0]):
                at = waiting[next_of]
                next_of += 1
                row = next(sources[at], None)
                if row is not None:
                    heapq.heappush(heap, (row[recv_at], at, row))
            if not heap:
                continue
            if len(heap) == 1:  # one file open (the usual case): no heap work until the next file begins
                _key, at, row = heap.pop()
                yield row
                limit = self._first_keys[waiting[next_of]] if next_of < len(waiting) else None
                for row in sources[at]:
                    if limit is not None and row[recv_at] >= limit:
                        heapq.heappush(heap, (row[recv_at], at, row))
                        break
                    yield row
                continue
            _key, at, row = heapq.heappop(heap)
            yield row
            following = next(sources[at], None)
            if following is not None:
                heapq.heappush(heap, (following[recv_at], at, following))

    def _rows_of(self, at: int, stream: CsvStream, on_progress: Callable[[int], None] | None) -> Iterator[list[str]]:
        """One file's rows in the union layout; a damaged file (a truncated .gz) is counted, not fatal."""
        mapping = _mapping(stream.layout, self.layout)
        width = stream.layout.width
        file, raw = open_text(stream.path)
        line = 1 if stream.layout.has_header else 0
        with raw, file:
            try:
                if stream.layout.has_header:
                    file.readline()
                reader = csv.reader(chunked_lines(file, raw, on_progress))
                for row in reader:
                    self.line = line + reader.line_num
                    if len(row) == width:
                        yield row if mapping is None else [row[i] if i >= 0 else "" for i in mapping]
                    elif row:
                        self.invalid.add("wrong number of cells", self.line)
            except (OSError, EOFError):
                self.invalid.add(f"damaged file {stream.path.name} (read up to the damage)", line)


def _union(layouts: list[Layout]) -> Layout:
    names = list(layouts[0].names)
    for layout in layouts[1:]:
        names.extend(name for name in layout.names if name not in names)
    return Layout(tuple(names), True)


def _mapping(layout: Layout, union: Layout) -> list[int] | None:
    """For each union column, its index in ``layout`` (-1: absent); None if they are the same."""
    if layout.names == union.names:
        return None
    return [layout.names.index(name) if name in layout.names else -1 for name in union.names]


def _first_cell(stream: CsvStream, name: str) -> str:
    """The ``name`` cell of a file's first row ("" if it has none)."""
    at = stream.layout.names.index(name)
    rows = stream.rows()
    try:
        for row in rows:
            return row[at]
    except (OSError, EOFError):
        pass
    finally:
        rows.close()
    return ""


def _first_time(stream: CsvStream) -> float:
    """The time of a file's first row with a readable time (files are read in this order)."""
    at = stream.layout.index("time")
    parser = TimeParser()
    rows = stream.rows()
    try:
        for row in rows:
            value = parser.parse(row[at]) if at is not None else None
            if value is not None:
                return value
    finally:
        rows.close()
    return float("inf")

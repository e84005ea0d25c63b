"""The CSV's file names: the active file, its alias, closed files with their time stamps, and finding them.

One naming scheme (``whc_data.csv`` configured):

- ``whc_data.csv``: the file being written (the active file), when its header is the server's;
- ``whc_data-active.csv``: the active file instead, when ``whc_data.csv`` holds another header
  (a file from the first version, say), which the server then never touches;
- ``whc_data-20261125T000000Z.csv``: a closed file, named after the receive time of its first row
  (``_001``, ``_002``... after the stamp if several files begin in the same second);
- ``whc_data-20261125T000000Z.csv.gz``: the same, compressed.

A closed name always holds a time stamp and an active name never does, so neither can be taken for
the other; names sort chronologically.
"""

from __future__ import annotations

import errno
import os
import re
from datetime import UTC, datetime
from pathlib import Path

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def active_alias(configured: Path) -> Path:
    """Where the server writes when ``configured`` holds another header."""
    return configured.with_name(f"{configured.stem}-active{configured.suffix}")


def closed_pattern(configured: Path) -> re.Pattern[str]:
    """Matches the closed-file names of ``configured``: (stamp, number, .gz)."""
    return re.compile(re.escape(configured.stem) + r"-(\d{8}T\d{6}Z)(?:_(\d{3}))?" + re.escape(configured.suffix)
                      + r"(\.gz)?")


def closed_files(configured: Path) -> list[Path]:
    """The closed files of ``configured``, oldest first; a file present both plain and gzipped counts once (plain)."""
    pattern = closed_pattern(configured)
    found: dict[str, Path] = {}
    try:
        entries = list(os.scandir(configured.parent))
    except FileNotFoundError:
        return []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        key = entry.name[:-3] if match.group(3) else entry.name
        if key not in found or not match.group(3):
            found[key] = Path(entry.path)
    return [found[key] for key in sorted(found)]


def looks_closed(name: str) -> bool:
    """True for any closed-file name (whatever the configured name was)."""
    return _ANY_CLOSED.fullmatch(name) is not None


_ANY_CLOSED = re.compile(r".+-\d{8}T\d{6}Z(?:_\d{3})?\.[^.]+(?:\.gz)?")


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime(STAMP_FORMAT)


def closed_name(configured: Path, first_row: float) -> Path:
    """A free closed-file name for a file whose rows begin at ``first_row`` (epoch seconds)."""
    base = f"{configured.stem}-{stamp(first_row)}"
    for number in range(1000):
        name = base + (f"_{number:03d}" if number else "") + configured.suffix
        candidate = configured.with_name(name)
        if not candidate.exists() and not candidate.with_name(name + ".gz").exists():
            return candidate
    raise FileExistsError(errno.EEXIST, "more than 1000 files begin in one second", base)

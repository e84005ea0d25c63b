"""The CSV's file names, when to switch to a new file, and the background gzip and expiry of closed files.

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
import gzip
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..durable import fsync_dir

log = logging.getLogger(__name__)

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
PERIODS = {"none": 0, "hourly": 3600, "daily": 86400}
RETRY_SECONDS = 60.0
COPY_CHUNK = 1 << 20
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


@dataclass(frozen=True)
class RotationPolicy:
    """The csv_rotate, csv_max_bytes, csv_compress and csv_keep_days settings."""

    every: str = "none"
    max_bytes: int = 0
    compress: bool = False
    keep_days: float = 0

    @property
    def period(self) -> int:
        return PERIODS[self.every]

    @property
    def housekeeping(self) -> bool:
        return self.compress or self.keep_days > 0


def active_alias(configured: Path) -> Path:
    """Where the server writes when ``configured`` holds another header."""
    return configured.with_name(f"{configured.stem}-active{configured.suffix}")


def _closed_pattern(configured: Path) -> re.Pattern[str]:
    return re.compile(re.escape(configured.stem) + r"-(\d{8}T\d{6}Z)(?:_(\d{3}))?" + re.escape(configured.suffix)
                      + r"(\.gz)?")


def closed_files(configured: Path) -> list[Path]:
    """The closed files of ``configured``, oldest first; a file present both plain and gzipped counts once (plain)."""
    pattern = _closed_pattern(configured)
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


def is_closed_name(configured: Path, name: str) -> bool:
    return _closed_pattern(configured).fullmatch(name) is not None


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


def period_of(seconds: float, period: int) -> int:
    return int(seconds // period)


def switch_files(active: Path, closed: Path, header: bytes) -> int:
    """Close ``active`` under the name ``closed`` and put a new file holding ``header`` in its place.

    The new file is written and fsynced first, then the old one gets its closed name (a hard link, so
    the active name never goes missing) and the new one replaces it. Returns the new file's descriptor
    (open for appending). On an OSError nothing has changed.
    """
    tmp = active.with_name(active.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(header)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        try:
            os.link(active, closed)
            linked = True
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            os.rename(active, closed)  # no hard links here: a crash now leaves tmp to be renamed at start
            linked = False
        try:
            os.replace(tmp, active)
        except OSError:
            if linked:
                os.unlink(closed)
            else:
                os.rename(closed, active)
            raise
    except BaseException:
        os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return fd


def recover_switch(active: Path, configured: Path) -> bool:
    """Finish or undo a switch a crash interrupted (see ``switch_files``); True if ``active`` was replaced.

    An empty ``active`` counts as missing (taking the lock creates the configured file empty)."""
    tmp = active.with_name(active.name + ".new")
    replaced = False
    if tmp.exists():
        if not active.exists() or active.stat().st_size == 0:
            os.replace(tmp, active)
            replaced = True
            log.warning("%s: finished a file switch a crash interrupted", active)
        else:
            tmp.unlink()
        fsync_dir(active.parent)
    if not active.exists():
        return replaced
    closed = closed_files(configured)
    if closed and not closed[-1].name.endswith(".gz") and os.path.samefile(closed[-1], active):
        closed[-1].unlink()  # linked but not yet replaced: the switch did not happen
        fsync_dir(active.parent)
        log.warning("%s: undid a file switch a crash interrupted", active)
    return replaced


def compress_file(path: Path, stop: threading.Event | None = None) -> Path | None:
    """Gzip ``path`` to ``path.gz`` durably, then remove ``path``; None if ``stop`` was set midway.

    Writes ``.gz.tmp``, fsyncs it, renames it, fsyncs the folder, and only then unlinks the original,
    so a crash or a full disk at any point leaves at least one complete copy.
    """
    target = path.with_name(path.name + ".gz")
    tmp = path.with_name(path.name + ".gz.tmp")
    mtime = path.stat().st_mtime
    try:
        with open(path, "rb") as source, open(tmp, "wb") as raw:
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, compresslevel=6, mtime=int(mtime)) as out:
                while chunk := source.read(COPY_CHUNK):
                    if stop is not None and stop.is_set():
                        break
                    out.write(chunk)
            raw.flush()
            os.fsync(raw.fileno())
        if stop is not None and stop.is_set():
            tmp.unlink()
            return None
        os.utime(tmp, (mtime, mtime))
        os.replace(tmp, target)
        fsync_dir(path.parent)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    path.unlink()
    fsync_dir(path.parent)
    return target


def tidy(configured: Path) -> None:
    """At start: drop half-written ``.gz.tmp`` files and originals whose ``.gz`` is complete (never fatal)."""
    pattern = _closed_pattern(configured)
    for entry in list(os.scandir(configured.parent)):
        name = entry.name
        try:
            if name.endswith(".gz.tmp") and pattern.fullmatch(name[:-7]):
                os.unlink(entry.path)
            elif pattern.fullmatch(name) and not name.endswith(".gz") and os.path.exists(entry.path + ".gz"):
                os.unlink(entry.path)  # the .gz was renamed into place only once complete and fsynced
        except OSError as exc:
            log.warning("could not remove %s: %s", entry.path, exc)


class Housekeeper(threading.Thread):
    """Compresses and expires closed files in the background, never on the ingest path.

    Failures (a full disk, say) are logged and retried a minute later; the plain file stays.
    """

    def __init__(self, configured: Path, policy: RotationPolicy) -> None:
        super().__init__(name="csv-housekeeper", daemon=True)
        self.configured = configured
        self.policy = policy
        self._wake = threading.Event()
        self._halt = threading.Event()
        self.compressed = 0
        self.expired = 0
        self.failing: str | None = None

    def poke(self) -> None:
        """A file was just closed: look at the folder soon."""
        self._wake.set()

    def stop(self, timeout: float) -> None:
        self._halt.set()
        self._wake.set()
        self.join(timeout)

    def run(self) -> None:
        while not self._halt.is_set():
            self._wake.clear()
            try:
                self.once()
                if self.failing is not None:
                    log.warning("housekeeping of closed CSV files works again")
                    self.failing = None
            except OSError as exc:
                if self.failing is None:
                    log.error("could not compress or expire closed CSV files (kept as they are; retrying every "
                              "%g s): %s", RETRY_SECONDS, exc)
                self.failing = str(exc)
            except Exception:  # a bug here must never stop the server
                log.exception("housekeeping of closed CSV files failed")
            self._wake.wait(RETRY_SECONDS)

    def _closed(self) -> list[Path]:
        """Closed files, less one that is still the active file (a switch caught between link and rename)."""
        active = set()
        for name in (self.configured, active_alias(self.configured)):
            try:
                active.add(name.stat().st_ino)
            except FileNotFoundError:
                pass
        return [path for path in closed_files(self.configured) if path.stat().st_ino not in active]

    def once(self) -> None:
        """Expire what is too old, then compress the rest (oldest first)."""
        if self.policy.keep_days > 0:
            limit = time.time() - self.policy.keep_days * 86400
            for path in self._closed():
                if self._halt.is_set():
                    return
                if path.stat().st_mtime < limit:
                    path.unlink()
                    gz = path.with_name(path.name + ".gz")
                    if gz.exists():
                        gz.unlink()
                    fsync_dir(path.parent)
                    self.expired += 1
                    log.info("expired %s (older than %g days)", path.name, self.policy.keep_days)
        if self.policy.compress:
            for path in self._closed():
                if self._halt.is_set():
                    return
                if path.suffix != ".gz" and compress_file(path, self._halt) is not None:
                    self.compressed += 1
                    log.info("compressed %s", path.name)


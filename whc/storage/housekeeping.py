"""Housekeeping of closed CSV files: gzip them in the background, expire old ones, tidy after a crash.

Runs on its own thread (``Housekeeper``), never on the ingest path.
"""

from __future__ import annotations

import gzip
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..durable import fsync_dir
from .csvnames import active_alias, closed_files, closed_pattern

if TYPE_CHECKING:
    from .rotation import RotationPolicy

log = logging.getLogger("whc.storage.rotation")  # the name its messages have always had

RETRY_SECONDS = 60.0
COPY_CHUNK = 1 << 20


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
    pattern = closed_pattern(configured)
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

"""When to switch the CSV to a new file, and the switch itself: crash-safe, and finished or undone at start.

The file names are in ``csvnames``; compressing and expiring closed files in ``housekeeping``.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..durable import fsync_dir
from .csvnames import closed_files

log = logging.getLogger(__name__)

PERIODS = {"none": 0, "hourly": 3600, "daily": 86400}
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

"""Making files survive a power cut: fsync a folder after a create or rename, and replace a
small file (state, marks) atomically. Used on both sides: the sender's spool, the server's CSV."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a file's creation or rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (short writes continued) and fsync it; OSError if that failed."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def replace_file(path: Path, data: bytes, private: bool = False) -> None:
    """Write ``data`` to ``path`` all-or-nothing and durably: temporary file, fsync, rename, fsync
    the folder. ``private`` files are readable by their owner only (0600). OSError if it failed."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    try:
        if private:
            os.fchmod(fd, 0o600)
        write_synced(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)

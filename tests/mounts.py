"""Small file systems for storage-failure tests: a tmpfs of a given size, remounted read-only at will.

Needs root (CI runs as root); without it the test fails with a message saying so, never skips.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    if result.returncode:
        raise AssertionError(f"mount {' '.join(args)} failed (these tests need root): {result.stderr.strip()}")


@contextmanager
def tmpfs(folder: Path, size: str = "4m") -> Iterator[Path]:
    """``folder`` as a fresh tmpfs of ``size``, unmounted at the end whatever happens."""
    folder.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def read_only(folder: Path, on: bool = True) -> None:
    """Remount the tmpfs at ``folder`` read-only (or back to read-write), as a failing SD card is."""
    _mount("-o", f"remount,{'ro' if on else 'rw'}", str(folder))

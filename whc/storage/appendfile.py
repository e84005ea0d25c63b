"""An append-only file whose commits are all-or-nothing: write, fsync, or roll back."""

from __future__ import annotations

import os
from pathlib import Path

from ..durable import fsync_dir, write_synced
from ..exc import StorageError


class AppendFile:
    """Stage bytes, then ``commit`` them durably; a failed commit truncates back and keeps them staged."""

    def __init__(self, path: Path, fd: int | None = None, private: bool = False) -> None:
        """Open ``path`` for appending, or adopt ``fd`` (already open for appending at ``path``);
        ``private`` files are readable by their owner only (0600)."""
        self.path = path
        created = fd is None and not path.exists()
        if fd is None:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600 if private else 0o644)
        self._fd = fd
        if private:
            os.fchmod(self._fd, 0o600)  # also a file an older version created 0644
        self.size = os.fstat(self._fd).st_size
        self._staged: list[bytes] = []
        if created:
            fsync_dir(path.parent)

    @property
    def staged(self) -> bool:
        return bool(self._staged)

    @property
    def staged_bytes(self) -> int:
        return sum(map(len, self._staged))

    def take_staged(self) -> list[bytes]:
        """Hand over what is staged (to stage it in another file instead)."""
        staged, self._staged = self._staged, []
        return staged

    def inode(self) -> int:
        return os.fstat(self._fd).st_ino

    def append(self, data: bytes) -> None:
        """Stage ``data``; nothing reaches the file before ``commit``."""
        self._staged.append(data)

    def commit(self) -> None:
        """Write everything staged and fsync; on failure undo the partial write and raise StorageError."""
        if not self._staged:
            return
        data = b"".join(self._staged)
        try:
            os.ftruncate(self._fd, self.size)  # drop any partial write left by an earlier failure
            write_synced(self._fd, data)
        except OSError as exc:
            try:
                os.ftruncate(self._fd, self.size)
            except OSError:
                pass  # retried before the next write
            raise StorageError(f"{self.path}: {exc.strerror or exc}") from exc
        self.size += len(data)
        self._staged = []

    def close(self) -> None:
        os.close(self._fd)

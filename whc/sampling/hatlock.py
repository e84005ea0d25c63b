"""One process per Sense HAT: an ``flock`` taken before the HAT is opened, covering sampling and the LED.

Two processes on one HAT corrupt each other: an IMU init resets the chip, register reads are separate
write-then-read transfers, and reading the data-ready status consumes samples the other would have seen.
The lock file holds the holder's PID and command line, so the refused process can name it. The kernel
drops an ``flock`` when its holder dies, so a crashed sender never leaves the HAT locked.

The real HAT is locked machine-wide (``/run/lock``); the emulated HAT is shared by design between senders on
one machine (see ``backends/_emu_sim``), so there the lock guards the sender's own spool folder instead.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..exc import HatBusy

SYSTEM_LOCK_DIR = Path("/run/lock")  # tmpfs, world-writable with the sticky bit on Raspberry Pi OS
LOCK_NAME = "whc-sense-hat.lock"


def lock_path(machine_wide: bool, spool_dir: Path) -> Path:
    """Where the lock of a back end lives: machine-wide for a real HAT, else in the spool folder.

    ``WHC_HAT_LOCK_DIR`` moves the machine-wide lock (tests use it, so that they never touch the Pi's lock).
    """
    if machine_wide:
        folder = Path(os.environ.get("WHC_HAT_LOCK_DIR") or SYSTEM_LOCK_DIR)
        if folder.is_dir():
            return folder / LOCK_NAME
    return spool_dir / LOCK_NAME


def _describe(pid_text: str, path: Path) -> str:
    """'pid N (command line)' for the holder recorded in the lock file."""
    pid = pid_text.split(" ", 1)[0]
    if not pid.isdigit():
        return "another process (its pid is not recorded yet)"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except FileNotFoundError:  # the holder could not write its PID (read-only lock file): this one is stale
        return f"another process (pid {pid} in the lock file has ended; see: fuser -v {path})"
    except OSError:
        command = ""
    return f"pid {pid}" + (f" ({command})" if command else "")


def lock_hat(backend: str, spool_dir: Path) -> HatLock:
    """Take the lock of the HAT that back end ``backend`` reads; HatBusy if another process holds it."""
    from .backends import MACHINE_WIDE_LOCK

    return HatLock(lock_path(backend in MACHINE_WIDE_LOCK, spool_dir)).acquire()


class HatLock:
    """An exclusive, non-blocking ``flock`` on ``path``; ``acquire()`` raises HatBusy naming the holder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> HatLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            writable = True
        except OSError as e:  # made by another user, or a read-only /run/lock (a unit without ReadWritePaths)
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)  # an flock needs no write access
            except OSError:
                raise HatBusy(f"cannot create the HAT lock {self.path} ({e.strerror}); the systemd unit needs "
                              f"ReadWritePaths=/run/lock (see deploy/whc-sender.service)") from None
            writable = False
        # The lock is held on a read-only descriptor: a file kept open for writing would stop the card
        # holding the spool (where the emulator's lock lives) from being remounted read-only.
        try:
            held = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BaseException as exc:
                holder = os.pread(held, 200, 0).decode(errors="replace").strip()
                os.close(held)
                if isinstance(exc, BlockingIOError):
                    raise HatBusy(
                        f"the Sense HAT is in use by {_describe(holder, self.path)} (lock {self.path}); one process "
                        f"per HAT: stop it first (e.g. sudo systemctl stop whc-sender) or read its log") from None
                raise
            if writable:
                if os.fstat(fd).st_uid == os.geteuid():
                    os.fchmod(fd, 0o666)  # other users (a manual --once as root, the service as whc) record their PID
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        finally:
            os.close(fd)
        self._fd = held
        return self

    def release(self) -> None:
        """Drop the lock (idempotent); the file stays, so a waiting process never locks a deleted file."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> HatLock:
        return self if self._fd is not None else self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

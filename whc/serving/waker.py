"""Wake the event loop from another thread or a signal handler: a socket pair the loop watches."""

from __future__ import annotations

import socket


class Waker:
    """``wake`` from anywhere; the loop calls ``drain`` when ``fileno`` turns readable."""

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)

    def fileno(self) -> int:
        return self._read.fileno()

    def wake(self) -> None:
        try:
            self._write.send(b"\0")
        except OSError:
            pass  # the pipe is full: the loop is awake already

    def drain(self) -> None:
        try:
            while self._read.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def close(self) -> None:
        self._read.close()
        self._write.close()

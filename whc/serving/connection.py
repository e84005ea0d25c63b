"""One client socket as the event loop sees it: its handler, its selector events and its output.

The ``Connection`` does the socket I/O for its handler (send what the handler composes,
register for the events it needs, close); the server decides when, and keeps the books.
"""

from __future__ import annotations

import selectors
import socket
import ssl
from dataclasses import dataclass

from .handler import Handler

WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
RECV_BYTES = 256 * 1024
TLS_RECORD = 16384
# One receive buffer for every connection (only the event loop receives), copied out as bytes: a
# fresh 256 KiB bytes object per recv, shrunk to what came, made glibc mmap and unmap one each time.
_RECEIVED = memoryview(bytearray(RECV_BYTES))


def _recv(sock: socket.socket) -> bytes:
    """One recv into the shared buffer, copied out."""
    return _RECEIVED[:sock.recv_into(_RECEIVED)].tobytes()


@dataclass(eq=False)
class Connection:
    """A socket and its handler, plus the loop's bookkeeping (bytes in flight, pause, closing).

    Callers use ``handshake``, ``receive``, ``flush``, ``set_events``, ``close``, ``has_output``
    and ``drained``; the fields are the server's to read and set.
    """

    sock: socket.socket
    handler: Handler
    selector: selectors.BaseSelector
    last_rx: float
    in_flight: int = 0  # bytes received and handed to storage, not yet committed
    out: bytes = b""  # composed, not yet taken by the socket
    paused: bool = False
    closing_since: float | None = None
    closed: bool = False
    events: int = selectors.EVENT_READ
    handshaking: bool = False  # TLS handshake not finished yet
    failure: OSError | None = None  # the error that ended receiving, after some bytes had arrived
    ended: bool = False  # the client's end (a TLS close_notify, or EOF) came right after what receive returned
    unit: str | None = None  # the sh_id it speaks for, once known (the fleet's state keeps it here)

    def has_output(self) -> bool:
        """Something is waiting to be sent: composed already, or due from the handler."""
        return bool(self.out) or self.handler.has_output()

    @property
    def drained(self) -> bool:
        """Nothing of this connection waits: no uncommitted input, nothing left to send."""
        return self.in_flight == 0 and not self.has_output()

    def handshake(self) -> bool:
        """Advance a TLS handshake without blocking; True once it is done.

        Raises ``ssl.SSLError`` or ``OSError`` if it failed."""
        try:
            self.sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            self.set_events(selectors.EVENT_READ)
            return False
        except ssl.SSLWantWriteError:
            self.set_events(selectors.EVENT_WRITE)
            return False
        self.handshaking = False
        self.set_events(selectors.EVENT_READ)
        return True

    def receive(self) -> bytes:
        """What the client sent, ``b""`` at its end; raises a ``WOULD_BLOCK`` error if nothing is ready,
        ``OSError`` if the connection failed.

        A TLS recv returns one record (16 KiB at most), so the records already waiting are taken
        too, within reason. If the connection fails after some arrived, what arrived is returned
        and the error is kept in ``failure``; if the client's end came after them, ``ended`` is set."""
        data = _recv(self.sock)
        if not data or not isinstance(self.sock, ssl.SSLSocket):
            return data
        parts = [data]
        for _ in range(RECV_BYTES // TLS_RECORD):
            try:
                more = _recv(self.sock)
            except WOULD_BLOCK:
                break
            except OSError as exc:  # a reset, a damaged record
                self.failure = exc
                break
            if not more:  # the client's end: after a close_notify the socket may never be readable again
                self.ended = True
                break
            parts.append(more)
        return b"".join(parts)

    def flush(self) -> None:
        """Send as much as the socket takes without blocking; watch for writability while some is left.

        Raises ``OSError`` if the send fails (the peer is gone)."""
        if self.closed:
            return
        if not self.out:
            self.out = self.handler.outgoing()
        if self.out:
            try:
                sent = self.sock.send(self.out)
            except WOULD_BLOCK:
                sent = 0
            self.out = self.out[sent:]
        events = self.events | selectors.EVENT_WRITE if self.out else self.events & ~selectors.EVENT_WRITE
        self.set_events(events)

    def set_events(self, events: int) -> None:
        """Watch for ``events`` (0: not at all)."""
        if self.closed or events == self.events:
            return
        if self.events == 0:
            self.selector.register(self.sock, events, self)
        elif events == 0:
            self.selector.unregister(self.sock)
        else:
            self.selector.modify(self.sock, events, self)
        self.events = events

    def close(self) -> None:
        """Stop watching and close the socket (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self.events:
            self.selector.unregister(self.sock)
            self.events = 0
        try:
            self.sock.close()
        except OSError:
            pass

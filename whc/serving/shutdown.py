"""The server's stop sequence: no new connections, take in what clients already sent, commit it,
send the last acks, close everything; the exit code says whether all of it reached the disk."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..protocol import utc_now
from .connection import WOULD_BLOCK, Connection
from .stats import log_stats

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger("whc.serving.server")  # the server's logger: its messages keep their source

SHUTDOWN_SECONDS = 4.5


def shut_down(server: Server) -> int:
    """Stop ``server`` within ``SHUTDOWN_SECONDS``; 0 if everything received was committed, else 1."""
    deadline = time.monotonic() + SHUTDOWN_SECONDS
    log.info("stopping: no new connections; committing what was received")
    server.selector.unregister(server.listener)
    server.listener.close()
    read_until = deadline - 2.0  # leave the rest for the commit and the last acks
    for conn in list(server.conns):
        if conn.closed or conn.handler.finished is not None:
            continue
        if not conn.paused and not conn.handshaking and not server.backpressure.full:
            _read_available(server, conn, read_until)  # what clients sent before the stop
        batch = conn.handler.abandon_partial(utc_now(), "unterminated line at server shutdown", resent=True)
        if batch is not None:
            server._submit(conn, batch)
        elif conn.handler.auth_failure:
            server._drop_untrusted(conn, conn.handler.auth_failure)
    committed = server.committer.stop(max(0.1, deadline - time.monotonic() - 0.5))
    committed = committed and server.committer.crashed is None
    server._apply_commits()
    while time.monotonic() < deadline and any(c.has_output() for c in server.conns if not c.closed):
        for conn in list(server.conns):
            if not conn.closed:
                server._flush(conn)
        waiting = [c for c in server.conns if not c.closed and c.out]
        if not waiting:
            break
        for key, _mask in server.selector.select(min(0.05, max(0.0, deadline - time.monotonic()))):
            if isinstance(key.data, Connection):
                server._flush(key.data)
    for conn in list(server.conns):
        server._close(conn, "server stopping")
    log_stats(server, 0.0)
    server.watch.stop()
    if not committed:  # the committer may still be inside a write: leave its files alone
        log.error("stopped with %d bytes not committed (writes failing or committer crashed); "
                  "senders will resend them", server.backpressure.pending)
        return 1
    server.committer.close()
    log.info("stopped cleanly")
    return 0


def _read_available(server: Server, conn: Connection, until: float) -> None:
    """Take in what the client already sent, within the time and memory limits.

    What stays unread is unacknowledged, so clients that use acks send it again."""
    for _ in range(64):
        if time.monotonic() > until or server.backpressure.full:
            return
        try:
            data = conn.receive()
        except WOULD_BLOCK:
            break
        except OSError:
            data = b""
        if not data:
            server._ingest(conn, b"", eof=True)
            return
        server._ingest(conn, data)
        if conn.handler.finished:
            return

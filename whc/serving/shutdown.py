"""The server's stop sequence: no new connections, take in what clients already sent, commit it,
send the last acks, close everything; the exit code says whether all of it reached the disk.

A mixin of ``Server`` (as ``socketserver`` mixes in threading): the sequence is the server's own."""

from __future__ import annotations

import logging
import time

from ..protocol import utc_now
from .connection import WOULD_BLOCK, Connection
from .stats import log_stats

log = logging.getLogger("whc.serving.server")  # the server's logger: its messages keep their source

SHUTDOWN_SECONDS = 4.5


class StopSequence:
    """``Server.serve_forever`` ends with ``_shutdown``."""

    def _shutdown(self) -> int:
        """Stop within ``SHUTDOWN_SECONDS``; 0 if everything received was committed, else 1."""
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        log.info("stopping: no new connections; committing what was received")
        self.selector.unregister(self.listener)
        self.listener.close()
        read_until = deadline - 2.0  # leave the rest for the commit and the last acks
        for conn in list(self.conns):
            if conn.closed or conn.handler.finished is not None:
                continue
            if not conn.paused and not conn.handshaking and not self.backpressure.full:
                self._read_available(conn, read_until)  # what clients sent before the stop
            batch = conn.handler.abandon_partial(utc_now(), "unterminated line at server shutdown", resent=True)
            if batch is not None:
                self._submit(conn, batch)
            elif conn.handler.auth_failure:
                self._drop_untrusted(conn, conn.handler.auth_failure)
        committed = self.committer.stop(max(0.1, deadline - time.monotonic() - 0.5))
        committed = committed and self.committer.crashed is None
        self._apply_commits()
        while time.monotonic() < deadline and any(c.has_output() for c in self.conns if not c.closed):
            for conn in list(self.conns):
                if not conn.closed:
                    self._flush(conn)
            waiting = [c for c in self.conns if not c.closed and c.out]
            if not waiting:
                break
            for key, _mask in self.selector.select(min(0.05, max(0.0, deadline - time.monotonic()))):
                if isinstance(key.data, Connection):
                    self._flush(key.data)
        for conn in list(self.conns):
            self._close(conn, "server stopping")
        log_stats(self, 0.0)
        self.watch.stop()
        if not committed:  # the committer may still be inside a write: leave its files alone
            log.error("stopped with %d bytes not committed (writes failing or committer crashed); "
                      "senders will resend them", self.backpressure.pending)
            return 1
        self.committer.close()
        log.info("stopped cleanly")
        return 0

    def _read_available(self, conn: Connection, until: float) -> None:
        """Take in what the client already sent, within the time and memory limits.

        What stays unread is unacknowledged, so clients that use acks send it again."""
        for _ in range(64):
            if time.monotonic() > until or self.backpressure.full:
                return
            try:
                data = conn.receive()
            except WOULD_BLOCK:
                break
            except OSError:
                data = b""
            if not data:
                self._ingest(conn, b"", eof=True)
                return
            self._ingest(conn, data)
            if conn.handler.finished:
                return

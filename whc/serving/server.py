"""The aggregator: one event loop for all sockets, one committer thread for the disk.

The loop accepts (allowlist and limits first, before any byte is read), reads, frames and
validates lines, and hands batches to the committer; the committer writes and fsyncs them
and wakes the loop, which then sends acks. Nothing here ever blocks on a client.
"""

from __future__ import annotations

import logging
import selectors
import signal
import ssl
import time
from collections import deque
from functools import partial

from ..config import Config
from ..monitoring.watch import FleetWatch
from ..parsers import choose as choose_parser
from ..protocol import utc_now
from ..storage import Batch
from ..storage.committer import Committer
from .access import certificate_names
from .allowlist import normalise_ip
from .backpressure import Backpressure
from .connection import WOULD_BLOCK, Connection
from .gate import Gate
from .handler import Handler
from .limits import raise_open_files
from .listener import bind
from .shutdown import StopSequence
from .stats import log_stats, server_view
from .waker import Waker

log = logging.getLogger(__name__)

LINGER_SECONDS = 10.0  # how long a closing connection may wait for its last ack to go out
ACCEPTS_PER_WAKE = 256
HANDSHAKE_SECONDS = 10.0


class Server(StopSequence):
    """Serve until stopped (the ``socketserver`` server role): it owns the listener, the loop, every
    connection's life cycle and the books; each connection's protocol is its ``Handler``'s, and
    storage is the committer's.

    Callers use ``serve_forever``, ``request_stop`` and ``install_signal_handlers``.
    """

    def __init__(self, config: Config, committer_factory) -> None:
        self.config = config
        self.gate = Gate(config)
        self.max_line_bytes: int = config["max_line_bytes"]
        if (too_few_files := raise_open_files(config["max_connections"])) is not None:
            log.warning("%s", too_few_files)
        self.idle_timeout: float = config["idle_timeout"]
        self.backpressure = Backpressure(config["max_pending_bytes"])
        self.parser = choose_parser(config["parser"])
        self.selector = selectors.DefaultSelector()
        self.listener = bind(config["ip"], config["port"])
        self.address = self.listener.getsockname()
        self.conns: set[Connection] = set()
        self._done: deque[Batch] = deque()
        self._waker = Waker()
        self._stop = False
        self.committer: Committer = committer_factory(self._committed)
        self.started = time.time()
        self.watch = FleetWatch(config, self.gate.allowlist, self.committer.known_units(),
                                partial(server_view, self))

    # --- life cycle -------------------------------------------------------------------------
    def serve_forever(self) -> int:
        """Run until SIGTERM/SIGINT or ``request_stop``; return the exit code."""
        self.committer.start()
        self.watch.start()
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, self._accept)
        self.selector.register(self._waker, selectors.EVENT_READ, self._waker.drain)
        log.info("parser: %s", self.parser.describe())
        log.info("listening on %s port %d %s", self.address[0], self.address[1], self.gate.describe())
        stats_every = self.config["stats_interval"]
        next_sweep = time.monotonic() + 1.0
        next_stats = time.monotonic() + stats_every
        last_written, last_stats = 0, time.monotonic()
        while not self._stop:
            timeout = max(0.0, min(next_stats, next_sweep) - time.monotonic())
            for key, mask in self.selector.select(timeout):
                if isinstance(key.data, Connection):
                    self._service(key.data, mask)
                else:
                    key.data()
            self._apply_commits()
            if self.committer.crashed is not None:
                break
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + 1.0
                self._sweep(now)
                self.watch.tick(now)
            if now >= next_stats:
                written = self.committer.written
                log_stats(self, (written - last_written) / (now - last_stats))
                last_written, last_stats, next_stats = written, now, now + stats_every
        return self._shutdown()

    def request_stop(self, *_: object) -> None:
        """Ask the loop to stop (safe from a signal handler or another thread)."""
        self._stop = True
        self._waker.wake()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, lambda *_: self.committer.request_reopen())  # after an external logrotate

    # --- accepting --------------------------------------------------------------------------
    def _accept(self) -> None:
        now = time.monotonic()
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: log, let the backlog wait
                self.gate.accept_failed(exc, now)
                return
            ip = normalise_ip(addr[0])
            admitted = self.gate.admit(sock, ip, now)
            if admitted is None:
                continue
            handler = Handler(ip, self.max_line_bytes, self.committer.encode, self.gate.token, parser=self.parser,
                              runs=self.committer.takes_runs)
            conn = Connection(admitted, handler, self.selector, now, handshaking=self.gate.tls is not None)
            self.conns.add(conn)
            self.selector.register(admitted, selectors.EVENT_READ, conn)
            log.debug("connection from %s", ip)

    # --- reading ----------------------------------------------------------------------------
    def _service(self, conn: Connection, mask: int) -> None:
        if conn.handshaking:
            self._handshake(conn)
            return
        if mask & selectors.EVENT_WRITE:
            self._flush(conn)
        if mask & selectors.EVENT_READ and not conn.closed:
            self._read(conn)

    def _handshake(self, conn: Connection) -> None:
        try:
            if not conn.handshake():
                return
        except OSError as exc:  # ssl.SSLError included
            self._drop_untrusted(conn, f"TLS handshake failed: {getattr(exc, 'reason', None) or exc}")
            return
        conn.last_rx = time.monotonic()
        sock: ssl.SSLSocket = conn.sock  # type: ignore[assignment]
        if self.gate.match_sh_id:
            conn.handler.require_identity(certificate_names(sock.getpeercert()))
        if sock.pending():
            self._read(conn)

    def _drop_untrusted(self, conn: Connection, reason: str) -> None:
        """Close a connection that failed a security check (the gate logs it once a minute per address)."""
        self.gate.untrusted(conn.handler.ip, reason)
        self._close(conn, reason, quiet=True)

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.receive()
        except WOULD_BLOCK:
            return
        except OSError as exc:
            data, conn.failure = b"", exc
        if conn.failure is not None:  # what arrived before the error (e.g. a reset) is still handled
            self._ingest(conn, data, eof=True)
            if conn.handler.auth_failure:
                self._drop_untrusted(conn, conn.handler.auth_failure)
            else:
                self._close(conn, f"receive failed: {conn.failure.strerror or conn.failure}")
            return
        conn.last_rx = time.monotonic()
        if not data:
            self._closed_by_client(conn)
            return
        self._ingest(conn, data)
        if conn.handler.auth_failure:
            self._drop_untrusted_after_reply(conn)
        elif conn.handler.finished:
            self._finish_input(conn, conn.handler.finished)
        elif conn.ended:  # a TLS client's close_notify came with its last records
            self._closed_by_client(conn)
        else:
            self.backpressure.pause_if_needed(conn)

    def _closed_by_client(self, conn: Connection) -> None:
        """The client's end: what it left unterminated is handled, and the connection closes once its last
        ack is out (at once if it failed authentication)."""
        self._ingest(conn, b"", eof=True)
        if conn.handler.auth_failure:
            self._drop_untrusted_after_reply(conn)
        else:
            self._finish_input(conn, "closed by client")

    def _drop_untrusted_after_reply(self, conn: Connection) -> None:
        """Send the client its error line (best effort, never waiting), then close."""
        self._flush(conn)
        self._drop_untrusted(conn, conn.handler.auth_failure or "refused")

    def _ingest(self, conn: Connection, data: bytes, eof: bool = False) -> None:
        try:
            batch = conn.handler.feed(data, utc_now(), eof)
        except Exception:  # a bug must cost one connection (its client resends), never the server
            log.exception("%s: internal error handling received data; closing the connection", conn.handler.ip)
            conn.handler.stop_reading("internal error")
            return
        if batch is not None:
            self._submit(conn, batch)
        elif conn.handler.has_output():
            self._flush(conn)
        self.watch.unit_news(conn)

    def _submit(self, conn: Connection, batch: Batch) -> None:
        batch.owner = conn
        self.backpressure.submitted(conn, batch)
        self.committer.submit(batch)

    def _finish_input(self, conn: Connection, why: str) -> None:
        """No more input from this client: close now, or once its last ack is out."""
        if not conn.handler.replies or conn.drained:
            self._close(conn, why)
            return
        conn.closing_since = time.monotonic()
        conn.set_events(0)
        self._flush(conn)

    # --- commits and acks -------------------------------------------------------------------
    def _committed(self, batches: list[Batch]) -> None:
        """Called by the committer thread: hand the batches to the loop."""
        self._done.extend(batches)
        self._waker.wake()

    def _apply_commits(self) -> None:
        touched = set()
        now = time.monotonic()
        while self._done:
            batch = self._done.popleft()
            conn: Connection = batch.owner
            self.backpressure.committed(conn, batch)
            conn.handler.committed(batch)
            touched.add(conn)
            self.watch.committed(batch, conn, now)
        for conn in touched:
            if conn.closed:
                continue
            self._flush(conn)
        self.backpressure.resume()

    def _flush(self, conn: Connection) -> None:
        """Send what is due; close a closing connection once nothing of it waits."""
        try:
            conn.flush()
        except OSError as exc:
            self._close(conn, f"send failed: {exc.strerror or exc}")
            return
        if conn.closing_since is not None and conn.drained:
            self._close(conn, conn.handler.finished or "closed by client")

    def _close(self, conn: Connection, why: str, quiet: bool = False) -> None:
        if conn.closed:
            return
        conn.close()
        self.conns.discard(conn)
        self.backpressure.forget(conn)
        h = conn.handler
        self.gate.closed(h.ip)
        self.watch.closed(conn)
        if quiet:
            return
        if h.rejected:
            log.warning("%s: %s; %d lines, %d rejected (see the rejects log)", h.ip, why, h.lines, h.rejected)
        else:
            log.debug("%s: %s; %d lines", h.ip, why, h.lines)

    # --- timers -----------------------------------------------------------------------------
    def _sweep(self, now: float) -> None:
        for conn in list(self.conns):
            if conn.handshaking:
                if now - conn.last_rx > HANDSHAKE_SECONDS:
                    self._drop_untrusted(conn, f"TLS handshake not done within {HANDSHAKE_SECONDS:g} s")
            elif conn.closing_since is not None:
                if now - conn.closing_since > LINGER_SECONDS and conn.in_flight == 0:
                    self._close(conn, "client did not take its last ack")
            elif now - conn.last_rx > self.idle_timeout and conn.in_flight == 0 and not conn.paused:
                batch = conn.handler.abandon_partial(utc_now(), "unterminated line at idle timeout")
                if batch is not None:
                    self._submit(conn, batch)  # recorded after the connection is gone
                if conn.handler.auth_failure:
                    self._drop_untrusted(conn, conn.handler.auth_failure)
                else:
                    self._close(conn, f"idle for {self.idle_timeout:g} s")

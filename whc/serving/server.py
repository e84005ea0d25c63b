"""The aggregator: one event loop for all sockets, one committer thread for the disk.

The loop accepts (allowlist and limits first, before any byte is read), reads, frames and
validates lines, and hands batches to the committer; the committer writes and fsyncs them
and wakes the loop, which then sends acks. Nothing here ever blocks on a client.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import selectors
import signal
import socket
import ssl
import time
from collections import deque
from dataclasses import dataclass

from ..config import Config
from ..exc import ConfigError
from ..monitoring.http import StatusHttpServer
from ..monitoring.units import Fleet
from ..protocol import utc_now
from ..storage import Batch
from ..storage.committer import Committer
from ..tls import server_context
from .access import certificate_names
from .allowlist import Allowlist, RateLimitedLog, normalise_ip
from .handler import Handler

log = logging.getLogger(__name__)

RECV_BYTES = 256 * 1024
CONN_IN_FLIGHT = 4 * 2**20  # received-but-uncommitted bytes per connection before it is paused
LINGER_SECONDS = 10.0  # how long a closing connection may wait for its last ack to go out
SHUTDOWN_SECONDS = 4.5
ACCEPTS_PER_WAKE = 256
HANDSHAKE_SECONDS = 10.0
ROW_OVERHEAD = 120  # bytes a staged row costs beyond its text (tuple, key, string header)


@dataclass(eq=False)
class Connection:
    """A socket and its handler, plus the loop's bookkeeping."""

    sock: socket.socket
    handler: Handler
    last_rx: float
    in_flight: int = 0
    out: bytes = b""
    paused: bool = False
    closing_since: float | None = None
    closed: bool = False
    events: int = selectors.EVENT_READ
    handshaking: bool = False  # TLS handshake not finished yet
    unit: str | None = None  # the sh_id it speaks for, once known (for the fleet's state)


class Server:
    """Serve until ``shutdown``; storage is the committer's business."""

    def __init__(self, config: Config, committer_factory) -> None:
        self.config = config
        self.allowlist = Allowlist(config["allowed_ips"])
        self.max_line_bytes: int = config["max_line_bytes"]
        self.max_connections: int = config["max_connections"]
        self.max_per_ip: int = config["max_connections_per_ip"]
        self.idle_timeout: float = config["idle_timeout"]
        self.token = token.encode("utf-8") if (token := config.secret("token")) else None
        self.tls = (server_context(config.resolve("tls_cert_file"), config.resolve("tls_key_file"),
                                   config.resolve("tls_client_ca_file") if config["tls_client_ca_file"] else None)
                    if config["tls_cert_file"] else None)
        self.match_sh_id: bool = config["tls_match_sh_id"]
        self.max_pending: int = config["max_pending_bytes"]
        self.selector = selectors.DefaultSelector()
        self.listener = bind(config["ip"], config["port"])
        self.address = self.listener.getsockname()
        self.conns: set[Connection] = set()
        self.per_ip: dict[str, int] = {}
        self.pending = 0
        self.paused: set[Connection] = set()
        self._done: deque[Batch] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stop = False
        self.denied_log = RateLimitedLog(60.0)
        self.accepted = 0
        self.denied = 0
        self.auth_failures = 0
        self.committer: Committer = committer_factory(self._committed)
        # --- watching the fleet (issue 11): per-unit state, optional HTTP status endpoints ---
        self.started = time.time()
        self.fleet = Fleet(config["silent_after"])
        marks = getattr(self.committer.sink, "marks", None)
        if marks is not None:
            self.fleet.known({sh_id for sh_id, _session in marks.marks})
        self.fleet_errors = RateLimitedLog(60.0)
        self.http = (StatusHttpServer(config["http_ip"], config["http_port"], self.allowlist, self._snapshot)
                     if config["http_port"] else None)

    # --- life cycle -------------------------------------------------------------------------
    def serve_forever(self) -> int:
        """Run until SIGTERM/SIGINT or ``request_stop``; return the exit code."""
        self.committer.start()
        if self.http is not None:
            self.http.start()
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, self._accept)
        self.selector.register(self._wake_r, selectors.EVENT_READ, self._drain_wake)
        security = ", ".join(part for part, on in [
            ("TLS", self.tls is not None), ("client certificates", self.tls is not None and
                                           self.tls.verify_mode == ssl.CERT_REQUIRED),
            ("sh_id must match the certificate", self.match_sh_id), ("token", self.token is not None)] if on)
        log.info("listening on %s port %d (%s); allowed: %s", self.address[0], self.address[1],
                 security or "plain TCP, no token", ", ".join(str(n) for n in self.allowlist.networks))
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
                self._watch(now)
            if now >= next_stats:
                written = self.committer.written
                self._log_stats((written - last_written) / (now - last_stats))
                last_written, last_stats, next_stats = written, now, now + stats_every
        return self._shutdown()

    def request_stop(self, *_: object) -> None:
        """Ask the loop to stop (safe from a signal handler or another thread)."""
        self._stop = True
        self._wake()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def _shutdown(self) -> int:
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        log.info("stopping: no new connections; committing what was received")
        self.selector.unregister(self.listener)
        self.listener.close()
        read_until = deadline - 2.0  # leave the rest for the commit and the last acks
        for conn in list(self.conns):
            if conn.closed or conn.handler.finished is not None:
                continue
            if not conn.paused and not conn.handshaking and self.pending <= self.max_pending:
                self._read_available(conn, read_until)  # what clients sent before the stop
            batch = conn.handler.abandon_partial(utc_now(), "unterminated line at server shutdown")
            if batch is not None:
                self._submit(conn, batch)
        committed = self.committer.stop(max(0.1, deadline - time.monotonic() - 0.5))
        committed = committed and self.committer.crashed is None
        self._apply_commits()
        while time.monotonic() < deadline and any(c.out or self._has_output(c) for c in self.conns if not c.closed):
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
        self._log_stats(0.0)
        if self.http is not None:
            self.http.stop()
        if not committed:  # the committer may still be inside a write: leave its files alone
            log.error("stopped with %d bytes not committed (writes failing or committer crashed); "
                      "senders will resend them", self.pending)
            return 1
        self.committer.sink.close()
        self.committer.rejects.close()
        log.info("stopped cleanly")
        return 0

    # --- accepting --------------------------------------------------------------------------
    def _accept(self) -> None:
        now = time.monotonic()
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: log, let the backlog wait
                if self.denied_log.due("accept-error", now):
                    log.error("accept failed: %s", exc)
                return
            ip = normalise_ip(addr[0])
            reason = self._refusal(ip)
            if reason is not None:
                self.denied += 1
                sock.close()
                if self.denied_log.due(f"{reason}:{ip}", now):
                    more = self.denied_log.take_suppressed(f"{reason}:{ip}")
                    log.warning("refused %s: %s%s", ip, reason, f" ({more} more since last logged)" if more else "")
                continue
            sock.setblocking(False)
            handler = Handler(ip, self.max_line_bytes, self.committer.sink.encode, self.token)
            if self.tls is not None:
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                except OSError as exc:  # reset before the handshake (ssl.SSLError is an OSError too)
                    sock.close()
                    self.auth_failures += 1
                    log.debug("%s: closed before the TLS handshake: %s", ip, exc)
                    continue
            conn = Connection(sock, handler, now, handshaking=self.tls is not None)
            self.conns.add(conn)
            self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
            self.accepted += 1
            self.selector.register(sock, selectors.EVENT_READ, conn)
            log.debug("connection from %s", ip)

    def _refusal(self, ip: str) -> str | None:
        if not self.allowlist.allows(ip):
            return "not in allowed_ips"
        if len(self.conns) >= self.max_connections:
            return f"max_connections ({self.max_connections}) reached"
        if self.per_ip.get(ip, 0) >= self.max_per_ip:
            return f"max_connections_per_ip ({self.max_per_ip}) reached"
        return None

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
        sock: ssl.SSLSocket = conn.sock  # type: ignore[assignment]
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._set_events(conn, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._set_events(conn, selectors.EVENT_WRITE)
            return
        except (ssl.SSLError, OSError) as exc:
            self._refused(conn, f"TLS handshake failed: {getattr(exc, 'reason', None) or exc}")
            return
        conn.handshaking = False
        conn.last_rx = time.monotonic()
        if self.match_sh_id:
            conn.handler.identities = certificate_names(sock.getpeercert())
        self._set_events(conn, selectors.EVENT_READ)
        if sock.pending():
            self._read(conn)

    def _refused(self, conn: Connection, reason: str) -> None:
        """Close a connection that failed a security check; log it once a minute per address."""
        self.auth_failures += 1
        ip = conn.handler.ip
        key = f"auth:{ip}"
        if self.denied_log.due(key, time.monotonic()):
            more = self.denied_log.take_suppressed(key)
            log.warning("refused %s: %s%s", ip, reason, f" ({more} more refusals since last logged)" if more else "")
        self._close(conn, reason, quiet=True)

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(RECV_BYTES)
            if self.tls is not None and data:
                data = self._read_tls_records(conn.sock, data)  # type: ignore[arg-type]
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError as exc:
            self._ingest(conn, b"", eof=True)
            self._close(conn, f"receive failed: {exc.strerror or exc}")
            return
        conn.last_rx = time.monotonic()
        if not data:
            self._ingest(conn, b"", eof=True)
            self._finish_input(conn, "closed by client")
            return
        self._ingest(conn, data)
        if conn.handler.auth_failure:
            self._refused_after_flush(conn)
        elif conn.handler.finished:
            self._finish_input(conn, conn.handler.finished)
        elif conn.in_flight > CONN_IN_FLIGHT or self.pending > self.max_pending:
            self._pause(conn)

    @staticmethod
    def _read_tls_records(sock: ssl.SSLSocket, data: bytes) -> bytes:
        """A TLS recv returns one record (16 KiB at most): take what else is ready, within reason."""
        parts = [data]
        for _ in range(RECV_BYTES // 16384):
            try:
                more = sock.recv(RECV_BYTES)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            if not more:
                break
            parts.append(more)
        return b"".join(parts)

    def _refused_after_flush(self, conn: Connection) -> None:
        """Send the client its error line (best effort, never waiting), then close."""
        self._flush(conn)
        self._refused(conn, conn.handler.auth_failure or "refused")

    def _read_available(self, conn: Connection, until: float) -> None:
        """At shutdown: take in what the client already sent, within the time and memory limits.

        What stays unread is unacknowledged, so clients that use acks send it again."""
        for _ in range(64):
            if time.monotonic() > until or self.pending > self.max_pending:
                return
            try:
                data = conn.sock.recv(RECV_BYTES)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except OSError:
                data = b""
            if not data:
                self._ingest(conn, b"", eof=True)
                return
            self._ingest(conn, data)
            if conn.handler.finished:
                return

    def _ingest(self, conn: Connection, data: bytes, eof: bool = False) -> None:
        try:
            batch = conn.handler.feed(data, utc_now(), eof)
        except Exception:  # a bug must cost one connection (its client resends), never the server
            log.exception("%s: internal error handling received data; closing the connection", conn.handler.ip)
            conn.handler.finished = "internal error"
            return
        if batch is not None:
            self._submit(conn, batch)
        elif conn.handler.writes and conn.handler.ok_due:
            self._flush(conn)
        if conn.handler.status is not None or (conn.unit is None and conn.handler.sh_id is not None):
            self._unit_news(conn)

    def _submit(self, conn: Connection, batch: Batch) -> None:
        batch.owner = conn
        # What it holds until committed: encoded rows (about the size of the input, plus their
        # tuples) and rejects-log lines; this is what max_pending_bytes bounds.
        batch.nbytes = batch.nbytes + ROW_OVERHEAD * len(batch.rows) + sum(map(len, batch.rejects)) + 1
        conn.in_flight += batch.nbytes
        self.pending += batch.nbytes
        self.committer.submit(batch)

    def _finish_input(self, conn: Connection, why: str) -> None:
        """No more input from this client: close now, or once its last ack is out."""
        if not conn.handler.writes or (conn.in_flight == 0 and not conn.out and not self._has_output(conn)):
            self._close(conn, why)
            return
        conn.closing_since = time.monotonic()
        self._set_events(conn, 0)
        self._flush(conn)

    # --- backpressure -----------------------------------------------------------------------
    def _pause(self, conn: Connection) -> None:
        if not conn.paused:
            conn.paused = True
            self.paused.add(conn)
            self._set_events(conn, conn.events & ~selectors.EVENT_READ)

    def _resume_paused(self) -> None:
        if not self.paused or self.pending > self.max_pending // 2:
            return
        for conn in list(self.paused):
            if conn.in_flight <= CONN_IN_FLIGHT // 2:
                conn.paused = False
                self.paused.discard(conn)
                if not conn.closed and conn.closing_since is None:
                    self._set_events(conn, conn.events | selectors.EVENT_READ)

    # --- commits and acks -------------------------------------------------------------------
    def _committed(self, batches: list[Batch]) -> None:
        """Called by the committer thread: hand the batches to the loop."""
        self._done.extend(batches)
        self._wake()

    def _apply_commits(self) -> None:
        touched = set()
        now = time.monotonic()
        while self._done:
            batch = self._done.popleft()
            conn: Connection = batch.owner
            conn.in_flight -= batch.nbytes
            self.pending -= batch.nbytes
            conn.handler.committed(batch)
            touched.add(conn)
            try:
                self.fleet.committed(batch, conn, conn.handler.ip, now)
            except Exception:  # the fleet's state must never cost a reading
                self._fleet_error()
        for conn in touched:
            if conn.closed:
                continue
            self._flush(conn)
            if conn.closing_since is not None and conn.in_flight == 0 and not conn.out:
                self._close(conn, conn.handler.finished or "closed by client")
        self._resume_paused()

    def _has_output(self, conn: Connection) -> bool:
        h = conn.handler
        return h.writes and (h.ok_due or bool(h.errors) or (h.acks and h.handled > h.ack_sent))

    def _flush(self, conn: Connection) -> None:
        if conn.closed:
            return
        if not conn.out:
            conn.out = conn.handler.outgoing()
        if conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                sent = 0
            except OSError as exc:
                self._close(conn, f"send failed: {exc.strerror or exc}")
                return
            conn.out = conn.out[sent:]
        wants_write = bool(conn.out)
        events = conn.events
        events = events | selectors.EVENT_WRITE if wants_write else events & ~selectors.EVENT_WRITE
        self._set_events(conn, events)
        if not wants_write and conn.closing_since is not None and conn.in_flight == 0 and not self._has_output(conn):
            self._close(conn, conn.handler.finished or "closed by client")

    def _set_events(self, conn: Connection, events: int) -> None:
        if conn.closed or events == conn.events:
            return
        if conn.events == 0:
            self.selector.register(conn.sock, events, conn)
        elif events == 0:
            self.selector.unregister(conn.sock)
        else:
            self.selector.modify(conn.sock, events, conn)
        conn.events = events

    def _close(self, conn: Connection, why: str, quiet: bool = False) -> None:
        if conn.closed:
            return
        conn.closed = True
        if conn.events:
            self.selector.unregister(conn.sock)
            conn.events = 0
        try:
            conn.sock.close()
        except OSError:
            pass
        self.conns.discard(conn)
        self.paused.discard(conn)
        if conn.unit is not None:
            self.fleet.detach(conn)
        ip = conn.handler.ip
        left = self.per_ip.get(ip, 1) - 1
        if left:
            self.per_ip[ip] = left
        else:
            self.per_ip.pop(ip, None)
        h = conn.handler
        if quiet:
            return
        if h.rejected:
            log.warning("%s: %s; %d lines, %d rejected (see the rejects log)", ip, why, h.lines, h.rejected)
        else:
            log.debug("%s: %s; %d lines", ip, why, h.lines)

    # --- timers -----------------------------------------------------------------------------
    def _sweep(self, now: float) -> None:
        for conn in list(self.conns):
            if conn.handshaking:
                if now - conn.last_rx > HANDSHAKE_SECONDS:
                    self._refused(conn, f"TLS handshake not done within {HANDSHAKE_SECONDS:g} s")
            elif conn.closing_since is not None:
                if now - conn.closing_since > LINGER_SECONDS and conn.in_flight == 0:
                    self._close(conn, "client did not take its last ack")
            elif now - conn.last_rx > self.idle_timeout and conn.in_flight == 0 and not conn.paused:
                batch = conn.handler.abandon_partial(utc_now(), "unterminated line at idle timeout")
                if batch is not None:
                    self._submit(conn, batch)  # recorded after the connection is gone
                self._close(conn, f"idle for {self.idle_timeout:g} s")

    def _log_stats(self, rate: float) -> None:
        c = self.committer
        state = f" WRITES FAILING: {c.failing}" if c.failing else ""
        log.info("stats: connections=%d readings/s=%.1f written=%d rejected=%d duplicates=%d refused=%d "
                 "pending_bytes=%d%s", len(self.conns), rate, c.written, c.rejected, c.duplicates,
                 self.denied, self.pending, state)

    # --- watching the fleet ------------------------------------------------------------------
    def _unit_news(self, conn: Connection) -> None:
        """The handler learnt the connection's unit (hello) or got a status line: tell the fleet."""
        h = conn.handler
        try:
            if conn.unit is None and h.sh_id is not None:
                self.fleet.attach(conn, h.sh_id, h.ip)
            if h.status is not None:
                status, h.status = h.status, None
                self.fleet.report(conn, status, h.ip, time.monotonic())
        except Exception:
            self._fleet_error()

    def _watch(self, now: float) -> None:
        """Once a second: rate history, silence."""
        try:
            self.fleet.tick(now)
        except Exception:
            self._fleet_error()

    def _snapshot(self) -> dict:
        """The fleet and the server as plain data; called by the HTTP thread (reads only, never blocks us)."""
        return self.fleet.snapshot(time.monotonic(), self._server_view())

    def _fleet_error(self) -> None:
        if self.fleet_errors.due("fleet", time.monotonic()):
            log.exception("internal error keeping the fleet's state (ingest goes on)")

    def _server_view(self) -> dict:
        c = self.committer
        return {"readings_written_total": c.written, "readings_rejected_total": c.rejected,
                "readings_duplicate_total": c.duplicates, "connections": len(self.conns),
                "pending_bytes": self.pending, "writes_failing": c.failing is not None,
                "writes_failing_reason": c.failing, "connections_refused_total": self.denied,
                "started_timestamp": self.started, "sink": c.sink.name}

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass


def bind(ip: str, port: int) -> socket.socket:
    """Listen on ``ip``:``port``; ``ConfigError`` with the fix if that is impossible."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET
    except ValueError:
        try:
            family = socket.getaddrinfo(ip, port, type=socket.SOCK_STREAM)[0][0]
        except socket.gaierror as exc:
            raise ConfigError(f"key 'ip': cannot resolve {ip!r}: {exc.strerror}") from None
    try:
        return socket.create_server((ip, port), family=family, backlog=1024,
                                    dualstack_ipv6=(ip == "::" and socket.has_dualstack_ipv6()))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {ip} is in use: stop the other server or change 'port'") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(f"key 'ip': {ip} is not an address of this machine (use 0.0.0.0 for all)") from None
        if exc.errno == errno.EACCES:
            raise ConfigError(f"key 'port': {port} needs privileges; use a port above 1023") from None
        raise ConfigError(f"cannot listen on {ip} port {port}: {exc.strerror or exc}") from None


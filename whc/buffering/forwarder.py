"""The forwarder: ships the buffer to the server over protocol v1 and acks what the server stored.

One connection at a time; on any failure (socket error, server gone quiet, bad answer)
it reconnects with exponential backoff and jitter, forever, and resends everything the
server has not acknowledged (the server drops what it already stored).
"""

from __future__ import annotations

import json
import logging
import random
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable

from .. import protocol
from ..exc import ServerGone
from .buffer import Buffer

log = logging.getLogger(__name__)

BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
LINES_PER_SEND = 500
POLL = 0.05


class Forwarder(threading.Thread):
    """Sends buffered readings in order; ``connected`` and ``rejected`` tell how it goes."""

    def __init__(self, buffer: Buffer, servers: list[tuple[str, int]], max_in_flight: int, ack_timeout: float,
                 hello: bytes = protocol.encode_hello(), tls: ssl.SSLContext | None = None,
                 server_name: str | None = None, status: Callable[[], bytes] | None = None,
                 status_interval: float = 60.0) -> None:
        super().__init__(name="forwarder", daemon=True)
        self.status = status  # the health line sent on connect and every status_interval (the hello says so)
        self.status_interval = status_interval
        self.hello = hello
        self.tls = tls
        self.server_name = server_name
        self.buffer = buffer
        self.servers = servers
        self.max_in_flight = max_in_flight
        self.ack_timeout = ack_timeout
        self.stopping = threading.Event()
        self.connected = False
        self.rejected = 0
        self._failures = 0
        self._sock: socket.socket | None = None

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self.join(timeout)

    def run(self) -> None:
        index = 0
        while not self.stopping.is_set():
            host, port = self.servers[index % len(self.servers)]
            try:
                self._session(host, port)
            except Exception as exc:  # whatever the server or network does, reconnect; never die
                if not isinstance(exc, (OSError, ServerGone, ValueError)):
                    log.exception("unexpected error talking to %s port %d", host, port)
                self._failures += 1
                if self._failures == 1 or self._failures % 10 == 0:
                    log.warning("server %s port %d: %s; retrying (attempt %d), %d readings buffered",
                                host, port, exc, self._failures, self.buffer.backlog)
            finally:
                self.connected = False
                if self._sock is not None:
                    self._sock.close()
                    self._sock = None
            if self.stopping.is_set():
                break
            index += 1
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(self._failures - 1, 10)) * random.uniform(0.5, 1.0)
            self.stopping.wait(delay)

    def _session(self, host: str, port: int) -> None:
        sock = socket.create_connection((host, port), timeout=min(10.0, self.ack_timeout))
        self._sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self._sock = self.tls.wrap_socket(sock, server_hostname=self.server_name or host)
        sock.sendall(self.hello)
        reader = _LineReader(sock)
        answer = reader.next_line(self.ack_timeout)
        if answer is None or json.loads(answer) != {"ok": 1}:
            raise ServerGone(f"server refused the hello: {answer.decode(errors='replace') if answer else None}")
        if self._failures:
            log.info("connected to %s port %d after %d failed attempts", host, port, self._failures)
        self._failures = 0
        self.connected = True
        buffer = self.buffer
        sent = buffer.acked  # position after the last line sent
        lines_sent = lines_acked = 0
        runs = [(0, sent)]  # (lines sent before it, its position): where lost positions were skipped
        waiting_since = next_status = time.monotonic()
        while not self.stopping.is_set():
            if self.status is not None and time.monotonic() >= next_status:  # not counted as a line
                sock.sendall(self.status())
                next_status = time.monotonic() + self.status_interval
            while lines_sent - lines_acked < self.max_in_flight:
                start, lines = buffer.read(sent, min(LINES_PER_SEND, self.max_in_flight - (lines_sent - lines_acked)))
                if not lines:
                    break
                if buffer.acked > sent:
                    raise ServerGone("readings dropped from a full spool; restarting the stream")
                if start != sent:
                    runs.append((lines_sent, start))
                sock.sendall(b"".join(lines))
                sent = start + len(lines)
                lines_sent += len(lines)
            readable, _, _ = select.select([sock], [], [], POLL)
            if readable or (self.tls is not None and sock.pending()):  # type: ignore[attr-defined]
                for line in reader.available():
                    message = json.loads(line)
                    if type(message) is not dict:
                        raise ServerGone(f"server sent {line[:80]!r}, not a protocol message")
                    if "ack" in message:
                        count = message["ack"]
                        if type(count) is not int or not 0 <= count <= lines_sent:
                            raise ServerGone(f"server acknowledged {count!r} of {lines_sent} lines sent")
                        lines_acked = max(lines_acked, count)
                        while len(runs) > 1 and runs[1][0] <= count:
                            runs.pop(0)  # acks only grow: runs before the acked line are done with
                        buffer.ack(runs[0][1] + count - runs[0][0])
                        waiting_since = time.monotonic()
                    elif "error" in message:
                        self.rejected += 1
                        log.warning("server refused line %s: %s", message.get("line"), message["error"])
            if lines_acked >= lines_sent:
                waiting_since = time.monotonic()
            elif time.monotonic() - waiting_since > self.ack_timeout:
                raise ServerGone(f"no ack for {self.ack_timeout:g} s")


class _LineReader:
    """Newline framing for what the server sends."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.partial = b""

    def next_line(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        previous = self.sock.gettimeout()
        while b"\n" not in self.partial:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerGone(f"no answer within {timeout:g} s")
            self.sock.settimeout(remaining)
            self._receive()
        self.sock.settimeout(previous)
        line, self.partial = self.partial.split(b"\n", 1)
        return line

    def available(self) -> list[bytes]:
        self._receive()
        *lines, self.partial = self.partial.split(b"\n")
        return lines

    def _receive(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (ssl.SSLWantReadError, BlockingIOError):
            return  # a TLS record not complete yet
        except TimeoutError:
            raise ServerGone("no answer in time") from None
        if not data:
            raise ServerGone("server closed the connection")
        self.partial += data

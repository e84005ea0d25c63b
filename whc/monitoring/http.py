"""The HTTP status endpoints, in a thread of their own so they can never block ingest.

This thread takes the fleet's snapshot itself (``snapshot``, at most once a second, only while
someone asks) and renders it; the server loop does no work for HTTP at all. Requests are small and
bounded: one request per connection, at most ``MAX_REQUEST_BYTES`` of head, ``REQUEST_SECONDS`` to
send it and read the answer, ``MAX_CLIENTS`` at once; the reply closes the connection.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..exc import ConfigError
from ..logs import RateLimitedLog
from ..serving.allowlist import Allowlist, normalise_ip
from . import metrics, page

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 8192
REQUEST_SECONDS = 5.0
MAX_CLIENTS = 32
SNAPSHOT_SECONDS = 1.0  # how long one snapshot serves every request

_ROUTES = {
    "/": ("text/html; charset=utf-8", page.render),
    "/metrics": ("text/plain; version=0.0.4; charset=utf-8", metrics.render),
    "/status.json": ("application/json", lambda snap: json.dumps(snap, indent=1) + "\n"),
}
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large", 500: "Internal Server Error"}


@dataclass(eq=False)
class _Client:
    sock: socket.socket
    deadline: float
    inbox: bytes = b""
    out: bytes = b""
    answered: bool = False


class StatusHttpServer(threading.Thread):
    """Serves ``/``, ``/status.json`` and ``/metrics`` from a snapshot at most ``SNAPSHOT_SECONDS`` old."""

    def __init__(self, ip: str, port: int, allowlist: Allowlist, snapshot: Callable[[], dict[str, Any]]) -> None:
        super().__init__(name="http-status", daemon=True)
        self.allowlist = allowlist
        self.take_snapshot = snapshot
        self.listener = _bind(ip, port)
        self.address = self.listener.getsockname()
        self.listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.clients: set[_Client] = set()
        self._rendered: tuple[float, dict[str, Any], dict[str, bytes]] | None = None
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.denied_log = RateLimitedLog(60.0)
        self.requests = 0

    def stop(self) -> None:
        self._stopping.set()
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass
        self.join(2.0)

    def run(self) -> None:
        log.info("status page on http://%s:%d/ (also /status.json and /metrics)", *self.address[:2])
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stopping.is_set():
                for key, mask in self.selector.select(1.0):
                    if key.data is None:
                        self._accept()
                    elif key.data != "wake":
                        self._service(key.data, mask)
                now = time.monotonic()
                for client in [c for c in self.clients if now > c.deadline]:
                    self._close(client)
        except Exception:  # the status page failing must not touch ingest: log and end this thread
            log.exception("HTTP status server stopped after an internal error (ingest goes on)")
        finally:
            for client in list(self.clients):
                self._close(client)
            self.selector.close()
            self.listener.close()
            self._wake_r.close()

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("HTTP accept failed: %s", exc)
                return
            ip = normalise_ip(addr[0])
            if not self.allowlist.allows(ip) or len(self.clients) >= MAX_CLIENTS:
                sock.close()
                why = "not in allowed_ips" if not self.allowlist.allows(ip) else f"{MAX_CLIENTS} HTTP clients already"
                if self.denied_log.due(f"http:{ip}", time.monotonic()):
                    log.warning("refused HTTP client %s: %s", ip, why)
                continue
            sock.setblocking(False)
            client = _Client(sock, time.monotonic() + REQUEST_SECONDS)
            self.clients.add(client)
            self.selector.register(sock, selectors.EVENT_READ, client)

    def _service(self, client: _Client, mask: int) -> None:
        if client.answered and not client.out:  # answered: drain what it still sends until it closes
            try:
                if client.sock.recv(65536):
                    return
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                pass
            self._close(client)
            return
        if mask & selectors.EVENT_READ and not client.answered:
            try:
                data = client.sock.recv(MAX_REQUEST_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close(client)
                return
            if not data:
                self._close(client)
                return
            client.inbox += data
            head_end = client.inbox.find(b"\r\n\r\n")
            if head_end < 0:
                head_end = client.inbox.find(b"\n\n")
            if head_end >= 0:
                self._answer(client, client.inbox[:head_end])
            elif len(client.inbox) > MAX_REQUEST_BYTES:
                self._reply(client, 431, "text/plain", b"request too large\n", head=False)
        if client.out:
            self._send(client)

    def _answer(self, client: _Client, head: bytes) -> None:
        self.requests += 1
        request_line = head.split(b"\n", 1)[0].decode("latin-1").strip()
        parts = request_line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            self._reply(client, 400, "text/plain", b"bad request\n", head=False)
            return
        method, target = parts[0], parts[1]
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            self._reply(client, 405, "text/plain", b"only GET\n", head=method == "HEAD")
            return
        route = _ROUTES.get(path)
        if route is None:
            self._reply(client, 404, "text/plain", b"not found: try /, /status.json or /metrics\n",
                        head=method == "HEAD")
            return
        try:
            body = self._render(path)
        except Exception:  # a bug in rendering costs this answer, not the endpoint
            if self.denied_log.due("render", time.monotonic()):
                log.exception("HTTP %s: cannot render", path)
            self._reply(client, 500, "text/plain", b"internal error (see the server log)\n", head=method == "HEAD")
            return
        self._reply(client, 200, route[0], body, head=method == "HEAD")

    def _render(self, path: str) -> bytes:
        """The body for ``path``: each snapshot is taken once and rendered once per path."""
        now = time.monotonic()
        if self._rendered is None or now - self._rendered[0] >= SNAPSHOT_SECONDS:
            self._rendered = (now, self.take_snapshot(), {})
        _, snapshot, cache = self._rendered
        body = cache.get(path)
        if body is None:
            body = cache[path] = _ROUTES[path][1](snapshot).encode("utf-8")
        return body

    def _reply(self, client: _Client, code: int, content_type: str, body: bytes, head: bool) -> None:
        client.answered = True
        header = (f"HTTP/1.1 {code} {_REASONS[code]}\r\nContent-Type: {content_type}\r\n"
                  f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n"
                  "X-Content-Type-Options: nosniff\r\n\r\n").encode("ascii")
        client.out = header + (b"" if head else body)
        self._send(client)

    def _send(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(client)
            return
        client.out = client.out[sent:]
        if client.out:
            self.selector.modify(client.sock, selectors.EVENT_WRITE, client)
            return
        try:  # all sent: end our side, and close once the client has (a close with unread input would reset)
            client.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(client)
            return
        self.selector.modify(client.sock, selectors.EVENT_READ, client)

    def _close(self, client: _Client) -> None:
        if client not in self.clients:
            return
        self.clients.discard(client)
        try:
            self.selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.sock.close()


def _bind(ip: str, port: int) -> socket.socket:
    """Listen for HTTP; ConfigError naming http_ip/http_port and the fix."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET
    except ValueError:
        raise ConfigError(f"key 'http_ip': {ip!r} is not an IP address (e.g. 127.0.0.1)") from None
    try:
        return socket.create_server((ip, port), family=family, backlog=64)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"key 'http_port': port {port} on {ip} is in use; choose another") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(f"key 'http_ip': {ip} is not an address of this machine") from None
        raise ConfigError(f"key 'http_port': cannot listen on {ip} port {port}: {exc.strerror or exc}") from None

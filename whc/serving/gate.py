"""Who gets in: the allowlist and connection limits at accept, TLS and the token after it, and
refusals logged at most once a minute per address and reason.

Nothing is read from a socket the gate refuses at accept.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time

from ..config import Config
from ..logs import RateLimitedLog
from ..tls import server_context
from .allowlist import Allowlist

log = logging.getLogger(__name__)


class Gate:
    """Admits connections, counts them per address, and logs and counts refusals."""

    def __init__(self, config: Config) -> None:
        self.allowlist = Allowlist(config["allowed_ips"])
        self.max_connections: int = config["max_connections"]
        self.max_per_ip: int = config["max_connections_per_ip"]
        self.token = token.encode("utf-8") if (token := config.secret("token")) else None
        self.tls = (server_context(config.resolve("tls_cert_file"), config.resolve("tls_key_file"),
                                   config.resolve("tls_client_ca_file") if config["tls_client_ca_file"] else None)
                    if config["tls_cert_file"] else None)
        self.match_sh_id: bool = config["tls_match_sh_id"]
        self.open = 0
        self._per_ip: dict[str, int] = {}
        self._log = RateLimitedLog(60.0)
        self.denied = 0  # closed at accept
        self.auth_failures = 0  # closed for failing a security check

    def describe(self) -> str:
        """What a client must get past, for the start-up line."""
        tls = self.tls
        security = ", ".join(part for part, on in [
            ("TLS", tls is not None), ("client certificates", tls is not None and tls.verify_mode == ssl.CERT_REQUIRED),
            ("sh_id must match the certificate", self.match_sh_id), ("token", self.token is not None)] if on)
        allowed = ", ".join(str(n) for n in self.allowlist.networks)
        return f"({security or 'plain TCP, no token'}); allowed: {allowed}"

    def admit(self, sock: socket.socket, ip: str, now: float) -> socket.socket | None:
        """The accepted socket, made non-blocking (and wrapped for TLS), or None if it was refused and closed."""
        reason = self._refusal(ip)
        if reason is not None:
            self.denied += 1
            sock.close()
            self._log_refusal(f"{reason}:{ip}", ip, reason, now)
            return None
        sock.setblocking(False)
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except OSError as exc:  # reset before the handshake (ssl.SSLError is an OSError too)
                sock.close()
                self.auth_failures += 1
                log.debug("%s: closed before the TLS handshake: %s", ip, exc)
                return None
        self.open += 1
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        return sock

    def closed(self, ip: str) -> None:
        """An admitted connection from ``ip`` has closed."""
        self.open -= 1
        left = self._per_ip.get(ip, 1) - 1
        if left:
            self._per_ip[ip] = left
        else:
            self._per_ip.pop(ip, None)

    def untrusted(self, ip: str, reason: str) -> None:
        """An admitted connection failed a security check (token, TLS, certificate name)."""
        self.auth_failures += 1
        self._log_refusal(f"auth:{ip}", ip, reason, time.monotonic())

    def accept_failed(self, exc: OSError, now: float) -> None:
        if self._log.due("accept-error", now):
            log.error("accept failed: %s", exc)

    def _refusal(self, ip: str) -> str | None:
        if not self.allowlist.allows(ip):
            return "not in allowed_ips"
        if self.open >= self.max_connections:
            return f"max_connections ({self.max_connections}) reached"
        if self._per_ip.get(ip, 0) >= self.max_per_ip:
            return f"max_connections_per_ip ({self.max_per_ip}) reached"
        return None

    def _log_refusal(self, key: str, ip: str, reason: str, now: float) -> None:
        if self._log.due(key, now):
            more = self._log.take_suppressed(key)
            log.warning("refused %s: %s%s", ip, reason, f" ({more} more since last logged)" if more else "")

"""The listening socket: bind the configured address, or say in one line how to fix it; and a free
port to bind, for the demo, the tests and the benchmarks."""

from __future__ import annotations

import errno
import ipaddress
import socket

from ..exc import ConfigError


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


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]

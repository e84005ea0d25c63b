"""The server raises its own open-files limit for max_connections, and says in one line when it cannot."""

from __future__ import annotations

import json
import resource
import socket
from collections.abc import Callable
from pathlib import Path

from harness import wait_for


def limit_files(soft: int, hard: int) -> Callable[[], None]:
    """A preexec function that starts the server with this RLIMIT_NOFILE."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def soft_open_files(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-files line in /proc/PID/limits")


def test_soft_limit_is_raised_to_serve_max_connections(server_factory, tmp_path: Path) -> None:
    server = server_factory(tmp_path, start=False, max_connections=1024, max_connections_per_ip=1024)
    server.start(preexec=limit_files(256, 4096))
    assert soft_open_files(server.proc.pid) >= 1024
    assert "open-files limit" not in server.log_text()
    clients = []
    try:
        for n in range(400):  # more than the 256 it was started with
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(json.dumps({"sh_id": "rpi01", "session": "s", "seq": n}).encode() + b"\n")
            clients.append(sock)
        wait_for(lambda: len(server.rows()) == 400, 30, what="a row from every connection")
    finally:
        for sock in clients:
            sock.close()
    assert "accept failed" not in server.log_text()


def test_a_hard_limit_below_max_connections_is_named_in_one_line(server_factory, tmp_path: Path) -> None:
    server = server_factory(tmp_path, start=False, max_connections=1024)
    server.start(preexec=limit_files(128, 128))
    (line,) = [line for line in server.log_text().splitlines() if "open-files limit" in line]
    assert "WARNING" in line and "is 128 (hard limit 128)" in line and "max_connections 1024" in line
    assert "LimitNOFILE" in line and "lower max_connections to 64" in line
    assert soft_open_files(server.proc.pid) == 128

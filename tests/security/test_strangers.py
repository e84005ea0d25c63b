"""With a token set, a connection is a stranger until its hello is accepted: nothing of it reaches a file.

Every refusal and close path runs against a real server with a known token; then every file the
server wrote, and its console, is searched for the token.
"""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import Client, reading, wait_for

TOKEN = "REALTOKEN-0123-secret"
HELLO = json.dumps({"hello": 1, "acks": True, "sh_id": "rpi01", "token": TOKEN}).encode()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def wait_closed(sock: socket.socket) -> None:
    """Read until the server closes the connection (or resets it)."""
    sock.settimeout(10)
    try:
        for _ in range(10_000):
            if not sock.recv(65536):
                break
    except ConnectionError:
        pass
    sock.close()


def written_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != "server.json"}


def assert_token_nowhere(folder: Path) -> None:
    for name, data in written_files(folder).items():
        for needle in (TOKEN.encode(), TOKEN[:8].encode()):
            assert needle not in data, f"{name} holds (part of) the token"


# --- the paths: each leaves the server to refuse, record or close something -----------------
def torn_hello(port: int) -> socket.socket:
    """A Pi on Wi-Fi whose link drops in the middle of its hello: the server holds an unfinished line."""
    sock = connect(port)
    sock.sendall(HELLO[:-4])
    return sock


def oversized_first_line(port: int) -> None:
    sock = connect(port)
    sock.sendall(b'{"hello": 1, "token": "' + TOKEN.encode() + b"x" * 70_000 + b'"}\n')
    sock.shutdown(socket.SHUT_WR)
    wait_closed(sock)


def oversized_unterminated_first_line(port: int) -> None:
    sock = connect(port)
    sock.sendall(b'{"hello": 1, "token": "' + TOKEN.encode() + b"y" * 70_000)
    wait_closed(sock)


def reading_instead_of_hello(port: int) -> None:
    sock = connect(port)
    sock.sendall(json.dumps(reading(note=TOKEN)).encode() + b"\n")
    wait_closed(sock)


def wrong_token(port: int) -> None:
    sock = connect(port)
    sock.sendall(json.dumps({"hello": 1, "acks": True, "token": TOKEN + "-wrong"}).encode() + b"\n")
    wait_closed(sock)


def torn_hello_then_hang_up(port: int) -> None:
    sock = torn_hello(port)
    sock.shutdown(socket.SHUT_WR)
    wait_closed(sock)


def trusted_client_repeats_its_hello(port: int) -> None:
    """After an accepted hello a second hello is a bad reading: recorded, with the token blanked out."""
    client = Client(port, acks=True, sh_id="rpi01", token=TOKEN)
    client.send_raw(HELLO + b"\n")
    client.sock.settimeout(10)
    assert client.read()["line"] == 1
    client.close()


def trusted_client_sends_token_in_a_line_cut_at_the_limit(port: int) -> None:
    client = Client(port, acks=True, sh_id="rpi01", token=TOKEN)
    client.send_raw(b'{"x": "' + b"z" * (4096 - 7 - 9) + TOKEN.encode() + b'"}\n')
    wait_closed(client.sock)


PATHS: dict[str, Callable[[int], None]] = {
    "oversized first line": oversized_first_line,
    "oversized unterminated first line": oversized_unterminated_first_line,
    "reading instead of a hello": reading_instead_of_hello,
    "wrong token": wrong_token,
    "torn hello, then hang-up": torn_hello_then_hang_up,
    "trusted client repeats its hello": trusted_client_repeats_its_hello,
    "trusted client's line cut at the limit": trusted_client_sends_token_in_a_line_cut_at_the_limit,
}


@pytest.mark.parametrize("path", PATHS)
def test_no_path_writes_the_token_anywhere(server_factory, tmp_path, path) -> None:
    server = server_factory(token=TOKEN, max_line_bytes=4096)
    held = torn_hello(server.port)  # one unfinished hello at shutdown, every time (accepted before the path's)
    PATHS[path](server.port)
    assert server.stop() == 0
    held.close()
    assert_token_nowhere(tmp_path)
    assert server.rows() == []


def test_unfinished_hello_at_idle_timeout_is_dropped_and_refused_once(server_factory, tmp_path) -> None:
    server = server_factory(token=TOKEN, idle_timeout=1)
    sock = torn_hello(server.port)
    wait_for(lambda: "refused 127.0.0.1" in server.log_text(), timeout=15, what="the refusal at idle timeout")
    wait_closed(sock)
    assert server.rejects() == [], "an untrusted unfinished line is not recorded"
    assert "before a hello" in server.log_text()
    assert_token_nowhere(tmp_path)


def test_unfinished_hello_at_shutdown_is_dropped(server_factory, tmp_path) -> None:
    server = server_factory(token=TOKEN)
    sock = torn_hello(server.port)
    wait_for(lambda: server.proc is not None and _has_connection(server.proc.pid, server.port),
             what="the server to hold the connection")
    assert server.stop() == 0
    sock.close()
    assert server.rejects() == []
    assert "refused 127.0.0.1" in server.log_text()
    assert_token_nowhere(tmp_path)


def _has_connection(pid: int, port: int) -> bool:
    """True once the server process has an established socket besides its listener."""
    sockets = sum(1 for fd in os.listdir(f"/proc/{pid}/fd")
                  if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"))
    return sockets >= 4  # listener, the wake pair, and the client


def test_stranger_flood_of_oversized_first_lines_writes_almost_nothing(server_factory, tmp_path) -> None:
    server = server_factory(token=TOKEN)
    line = b'{"hello": 1, "token": "' + b"x" * 70_000 + b'"}\n'
    for _ in range(300):
        sock = connect(server.port)
        try:
            sock.sendall(line)
            sock.shutdown(socket.SHUT_WR)
        except ConnectionError:
            pass  # refused mid-send: the point of the exercise
        wait_closed(sock)
    wait_for(lambda: "refused 127.0.0.1" in server.log_text(), what="the refusal logged")
    assert server.stop() == 0
    assert not server.rejects_path.exists() or server.rejects_path.stat().st_size == 0
    assert len(server.log_text()) < 4096, server.log_text()[-2000:]
    assert server.log_text().count("refused 127.0.0.1") == 1, "refusals are logged once a minute per address"
    log_file = tmp_path / "server.log"
    assert not log_file.exists() or log_file.stat().st_size < 4096


def test_rejects_log_and_state_file_are_private(server_factory, tmp_path) -> None:
    (tmp_path / "whc_data.rejects.jsonl").write_text("")
    os.chmod(tmp_path / "whc_data.rejects.jsonl", 0o644)  # as a version that created it 0644 left it
    server = server_factory()
    client = Client(server.port, acks=True)
    client.send(reading(seq=0), {"sh_id": "rpi01", "acc_x": "bad"})
    client.wait_ack(2)
    assert server.stop() == 0
    for name in ("whc_data.rejects.jsonl", "whc_data.csv.state"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(server.csv_path.stat().st_mode) == 0o644, "the CSV keeps its readable mode"

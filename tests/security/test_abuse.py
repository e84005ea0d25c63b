"""Slowloris, a flood from a denied address, half-open connections: honest senders are still served."""

from __future__ import annotations

import socket
import time

from harness import Client, reading, wait_for


def honest_round_trip(port: int, seq: int) -> float:
    """Seconds for an honest client to get one reading acknowledged."""
    started = time.monotonic()
    client = Client(port, acks=True)
    client.send(reading(sh_id="honest", session="h", seq=seq))
    client.wait_ack(1, timeout=5)
    client.close()
    return time.monotonic() - started


def test_slowloris_one_byte_a_second_does_not_hold_up_others(server_factory) -> None:
    server = server_factory(max_line_bytes=4096)
    slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
    line = b'{"sh_id": "slow", "acc_x": 1.0}\n'
    for index in range(3):  # three rounds of one byte per connection, a second apart
        for sock in slow:
            sock.sendall(line[index:index + 1])
        assert honest_round_trip(server.port, index) < 1.0
        time.sleep(1)  # the attack's own pace, not a wait for the server
    assert sum(r["sh_id"] == "honest" for r in server.rows()) == 3
    for sock in slow:
        sock.close()


def test_flood_from_a_denied_address_is_cheap_and_logged_once(server_factory) -> None:
    server = server_factory(allowed_ips=["127.0.0.1/32"])
    for _ in range(300):
        with socket.create_connection(("127.0.0.1", server.port), source_address=("127.0.0.2", 0)) as sock:
            try:
                sock.sendall(b'{"sh_id": "flood"}\n' * 10)
            except (BrokenPipeError, ConnectionResetError):
                pass
    assert honest_round_trip(server.port, 0) < 1.0
    wait_for(lambda: "refused 127.0.0.2" in server.log_text(), what="the refusal log line")
    assert server.log_text().count("refused 127.0.0.2") == 1
    assert [r["sh_id"] for r in server.rows()] == ["honest"]


def test_half_open_and_silent_connections_do_not_block_anyone(server_factory) -> None:
    server = server_factory(idle_timeout=2)
    silent = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(100)]
    half = []
    for _ in range(50):  # sent a partial line, then shut their sending side and never read
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b'{"sh_id": "half", "acc')
        sock.shutdown(socket.SHUT_WR)
        half.append(sock)
    assert honest_round_trip(server.port, 0) < 1.0
    wait_for(lambda: all(s.recv(1) == b"" for s in silent[:5]), 10, what="silent connections closed at idle_timeout")
    assert honest_round_trip(server.port, 1) < 1.0
    rejects = server.rejects()
    assert sum("half" in r.get("raw", "") for r in rejects) == 50, "every unfinished line is recorded, none stored"
    assert {r["sh_id"] for r in server.rows()} == {"honest"}
    for sock in silent + half:
        sock.close()

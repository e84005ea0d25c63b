"""Per-unit state on the server, as /status.json shows it: volume, position, health, connection."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import Client, fleet_unit, free_port, http_get, reading, wait_for


def status_line(**fields) -> bytes:
    return json.dumps({"status": 1, **fields}).encode() + b"\n"


def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


def test_a_units_readings_duplicates_rejects_and_seq_gaps(server_factory) -> None:
    http = free_port()
    server = server_factory(http_port=http)
    client = Client(server.port, acks=True, sh_id="rpi01", status=True)
    client.send(*[reading("rpi01", seq, time=ago(3)) for seq in range(5)])  # live, from a clock 3 s behind
    client.wait_ack(5)
    client.send_raw(status_line(backlog=1000, spooled_bytes=100, dropped=2, imu_failures=1, rate="fast",
                                clock_synced=True, cpu_temp=51.5, uptime=12.5, future_field=[1]))
    # then old backlog: 2-4 resent, 5 and 9 new but a minute old (6-8 never sent)
    client.send(*[reading("rpi01", seq, time=ago(60)) for seq in (2, 3, 4)])
    client.wait_ack(8)
    client.send(reading("rpi01", 5, time=ago(60)))
    client.wait_ack(9)
    client.send(reading("rpi01", 9, time=ago(60)))
    client.send_raw(b'{"sh_id": "rpi01", "acc_x": NaN}\n')
    client.wait_ack(11)
    client.send_raw(status_line(backlog=0))
    client.send(reading("rpi01", 10, time=ago(3)))
    client.wait_ack(12)
    assert [e["line"] for e in client.errors] == [11], "status lines are not counted"
    unit = wait_for(lambda: (u := fleet_unit(http, "rpi01")) and u["readings_total"] == 8 and u, what="unit state")
    assert unit["connected"] and unit["address"] == "127.0.0.1" and unit["state"] == "green"
    assert (unit["duplicates_total"], unit["rejected_total"]) == (3, 1)
    assert (unit["session"], unit["seq"]) == ("s1", 10)
    assert (unit["seq_holes"], unit["seq_missing"]) == (1, 3)
    assert unit["sender"]["backlog"] == 0, "the newest status line counts"
    assert "rate" not in unit["sender"] and "future_field" not in unit["sender"], "unknown or bad fields ignored"
    assert 2.9 < unit["clock_offset_seconds"] < 4, "the minute-old backlog is left out of the clock offset"
    assert len(server.rows()) == 8, "status lines are not stored"
    client.close()
    unit = wait_for(lambda: (u := fleet_unit(http, "rpi01")) and not u["connected"] and u, what="disconnect")
    assert unit["state"] == "red" and unit["state_reason"] == "disconnected"


def test_a_senders_health_fields(server_factory) -> None:
    http = free_port()
    server = server_factory(http_port=http)
    client = Client(server.port, acks=True, sh_id="rpi01", status=True)
    client.send_raw(status_line(backlog=7, spooled_bytes=100, dropped=2, imu_failures=1, rate=99.5,
                                clock_synced=False, cpu_temp=51.5, uptime=12.5))
    unit = wait_for(lambda: (u := fleet_unit(http, "rpi01")) and u["sender"] and u, what="the status")
    assert unit["sender"] | {"age_seconds": 0, "reported_timestamp": 0} == {
        "backlog": 7, "spooled_bytes": 100, "dropped": 2, "imu_failures": 1, "rate": 99.5, "clock_synced": False,
        "cpu_temp": 51.5, "uptime": 12.5, "age_seconds": 0, "reported_timestamp": 0}
    assert unit["connected"] and unit["state"] == "amber" and unit["readings_total"] == 0
    client.close()


def test_a_broken_status_line_is_recorded_not_counted(server_factory) -> None:
    server = server_factory()
    client = Client(server.port, acks=True, sh_id="rpi01")
    client.send_raw(b'{"status": 1, "backlog": \n')
    client.send(reading("rpi01", 0))
    client.wait_ack(1)
    assert client.errors == [] and len(server.rows()) == 1
    (record,) = wait_for(server.rejects, what="the rejects log")
    assert record["line"] is None and record["reason"].startswith("status line: invalid JSON")


def test_units_known_from_stored_data_are_listed_after_a_restart(server_factory, tmp_path: Path) -> None:
    http = free_port()
    server = server_factory(http_port=http)
    client = Client(server.port, acks=True)
    client.send(reading("rpi05", 0), reading("rpi06", 0), reading("rpi05", 1))
    client.wait_ack(3)
    unit = wait_for(lambda: fleet_unit(http, "rpi06"), what="rpi06 listed")
    assert unit["readings_total"] == 1 and fleet_unit(http, "rpi05")["readings_total"] == 2
    assert unit["clock_offset_seconds"] is None, "readings without a time say nothing of the clock"
    client.send(reading("rpi05", 0), reading("rpi06", 0), reading("rpi05", 1))  # a relay resending them all
    client.wait_ack(6)
    wait_for(lambda: fleet_unit(http, "rpi05")["duplicates_total"] == 2, what="rpi05's duplicates")
    assert fleet_unit(http, "rpi06")["duplicates_total"] == 1 and fleet_unit(http, "rpi05")["readings_total"] == 2
    client.close()
    assert server.stop() == 0
    server.start()
    unit = fleet_unit(http, "rpi06")
    assert unit is not None and unit["readings_total"] == 0 and unit["state"] == "red"


def test_http_endpoints_and_their_limits(server_factory) -> None:
    http = free_port()
    server = server_factory(http_port=http)
    assert http_get(http, "/nothing")[0] == 404
    code, body = http_get(http, "/status.json")
    assert code == 200 and json.loads(body)["server"]["readings_written_total"] == 0
    code, page = http_get(http, "/")
    assert code == 200 and "<html" in page and "http://" not in page and "https://" not in page, "self-contained"
    silent = socket.create_connection(("127.0.0.1", http))  # sends nothing: must not hold up others
    assert http_get(http, "/metrics", timeout=3)[0] == 200
    big = socket.create_connection(("127.0.0.1", http))
    big.sendall(b"GET / HTTP/1.1\r\nX: " + b"a" * 20000)
    assert big.recv(100).startswith(b"HTTP/1.1 431")
    wait_for(lambda: silent.recv(100) == b"", timeout=10, what="the silent client to be dropped")
    for sock in (silent, big):
        sock.close()
    assert "status page on http://127.0.0.1" in server.log_text()
    assert server.stop() == 0 and "stopped cleanly" in server.log_text()


def test_http_follows_allowed_ips(server_factory) -> None:
    http = free_port()
    server_factory(http_port=http, allowed_ips=["127.0.0.2"])
    with socket.create_connection(("127.0.0.1", http), source_address=("127.0.0.3", 0)) as refused:
        refused.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        try:
            answer = refused.recv(100)
        except ConnectionResetError:  # closed with our request unread
            answer = b""
        assert answer == b"", "closed without an answer"
    with socket.create_connection(("127.0.0.1", http), source_address=("127.0.0.2", 0)) as allowed:
        allowed.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        assert allowed.recv(100).startswith(b"HTTP/1.1 200")


def test_http_port_in_use_exits_2_naming_the_key(server_factory) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = server_factory(http_port=taken.getsockname()[1], start=False)
        server.start(wait=False)
        assert server.proc.wait(15) == 2
        assert "http_port" in server.log_text()


def test_hogging_the_http_port_does_not_touch_ingest(server_factory) -> None:
    http = free_port()
    server = server_factory(http_port=http)
    hogs = [socket.create_connection(("127.0.0.1", http)) for _ in range(40)]  # more than it serves at once
    try:
        client = Client(server.port, acks=True)
        client.send(*[reading("rpi01", seq) for seq in range(100)])
        client.wait_ack(100, timeout=5)
        client.close()
    finally:
        for hog in hogs:
            hog.close()

    def metrics_answer() -> bool:
        try:
            return http_get(http, "/metrics", timeout=3)[0] == 200
        except OSError:  # refused while the closed hogs still hold their places: not back yet
            return False

    assert wait_for(metrics_answer, what="HTTP back after the hogs")
    assert "refused HTTP client 127.0.0.1: 32 HTTP clients already" in server.log_text()

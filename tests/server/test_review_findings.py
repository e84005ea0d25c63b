"""Paths found in review where features meet: a half line at shutdown, a refused certificate,
status lines next to readings."""

from __future__ import annotations

import json
import socket

from harness import Client, reading

from whc.parsers import load
from whc.serving.handler import Handler
from whc.storage.sinks.csv import CsvSink

NOW = "2026-11-25T12:00:00.000000Z"


def handler(**extra) -> Handler:
    return Handler("127.0.0.1", 4096, CsvSink.encode, parser=load("stdlib"), **extra)


def test_a_half_reading_at_shutdown_is_not_acknowledged_so_the_client_sends_it_again(server_factory) -> None:
    server = server_factory()
    client = Client(server.port, acks=True)
    client.send(reading(seq=0))
    client.wait_ack(1)
    half = json.dumps(reading(seq=1)).encode()
    client.send_raw(half[: len(half) // 2])  # the rest is still on its way when the server stops
    assert server.stop() == 0
    client.sock.settimeout(10)
    while client.read() is not None:
        pass
    assert client.acked == 1 and client.errors == [], "an ack covering the half line would lose that reading"
    assert [r["seq"] for r in server.rows()] == ["0"] and server.rejects() == []


def test_a_refused_certificate_name_records_nothing_that_follows_in_the_same_chunk() -> None:
    h = handler(identities=frozenset({"rpi01"}))
    hello = json.dumps({"hello": 1, "acks": True, "sh_id": "rpi02"}).encode()
    batch = h.feed(hello + b"\n" + b'{"x": "' + b"y" * 5000 + b'"}\n', NOW)
    assert h.auth_failure and (batch is None or batch.rejects == [])


def test_a_status_line_and_a_reading_in_a_row_are_each_taken() -> None:
    h = handler()
    h.feed(json.dumps({"hello": 1, "acks": True, "sh_id": "rpi01"}).encode() + b"\n", NOW)
    status = json.dumps({"status": 1, "sh_id": "rpi01", "backlog": 3}).encode()
    batch = h.feed(status + json.dumps(reading(seq=0)).encode() + b"\n", NOW)
    assert batch is not None and len(batch.rows) == 1 and batch.rejects == []
    assert h.lines == 1, "the status line is not counted; the reading is"
    assert h.take_status()["backlog"] == "3"


def test_a_line_that_only_looks_like_status_is_recorded_not_swallowed() -> None:
    h = handler()
    batch = h.feed(b'{"status": 3, "sh_id": "rpi01", "acc_x": 1}\n', NOW)
    assert batch is not None and len(batch.rejects) == 1 and b"must be 1" in batch.rejects[0]
    assert h.take_status() is None


def test_a_status_line_with_an_odd_sh_id_under_certificate_checks_is_ignored() -> None:
    h = handler(identities=frozenset({"rpi01"}))
    h.feed(json.dumps({"hello": 1, "acks": True, "sh_id": "rpi01"}).encode() + b"\n", NOW)
    h.feed(b'{"status": 1, "sh_id": ["rpi01"]}\n', NOW)  # must not raise (a list is unhashable)
    assert h.take_status() is None and not h.auth_failure


def test_a_stranger_connection_never_reaches_the_rejects_log_at_shutdown(server_factory) -> None:
    server = server_factory(token="t0ken-value")
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b'{"hello": 1, "token": "t0ken-val')
        assert server.stop() == 0
    assert server.rejects() == []

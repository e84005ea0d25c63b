"""Framing on a real server: objects back to back, several on one line, a leading BOM, epoch times."""

from __future__ import annotations

import json
import socket
import subprocess

from harness import Client, wait_for


def objects(*values: dict) -> bytes:
    return b"".join(json.dumps(value).encode() for value in values)


def test_objects_without_newlines_are_stored_as_they_complete(server) -> None:
    # Node-RED's inject -> json -> tcp out writes exactly this: no newline, connection kept open
    client = Client(server.port)
    client.send_raw(objects({"sh_id": "nr", "acc_x": 1}, {"sh_id": "nr", "acc_x": 2}))
    wait_for(lambda: len(server.rows()) == 2, what="both readings stored while the connection is open")
    client.send_raw(b'{"sh_id": "nr", "acc_x": 3}{"sh_id": "nr", ')  # the fourth arrives in two parts
    wait_for(lambda: len(server.rows()) == 3, what="the third reading")
    client.send_raw(b'"acc_x": 4}')
    wait_for(lambda: len(server.rows()) == 4, what="the fourth reading once its brace arrives")
    client.close()
    assert [r["acc_x"] for r in server.rows()] == ["1", "2", "3", "4"]
    assert server.rejects() == []


def test_each_object_on_a_line_counts_as_a_line_for_acks_and_errors(server) -> None:
    client = Client(server.port, acks=True)
    client.send_raw(objects({"sh_id": "a", "acc_x": 1}, {"sh_id": "a", "acc_x": "warm"}, {"sh_id": "a", "acc_x": 3})
                    + b"  " + objects({"sh_id": "a", "acc_x": 4}) + b"\n" + objects({"sh_id": "a", "acc_x": 5}) + b"\n")
    client.wait_ack(5)
    assert client.acked == 5
    assert client.errors == [{"error": "'acc_x' must be a number or null, got string", "line": 2}]
    client.close()
    assert [r["acc_x"] for r in server.rows()] == ["1", "3", "4", "5"]
    assert [(r["line"], r["raw"]) for r in server.rejects()] == [(2, '{"sh_id": "a", "acc_x": "warm"}')]


def test_a_broken_object_makes_the_rest_of_its_line_one_refused_line(server) -> None:
    client = Client(server.port, acks=True)
    client.send_raw(b'{"sh_id": "a", "acc_x": 1}{"sh_id": "a", "acc_x": NaN}{"sh_id": "a", "acc_x": 3}\n'
                    b'{"sh_id": "a", "acc_x": 4}\n')
    client.wait_ack(3)
    assert [e["line"] for e in client.errors] == [2]
    client.close()
    assert [r["acc_x"] for r in server.rows()] == ["1", "4"]


def test_a_hello_may_share_its_line_with_readings(server) -> None:
    client = Client(server.port)
    client.send_raw(objects({"hello": 1, "acks": True}, {"sh_id": "a", "acc_x": 1}, {"sh_id": "a", "acc_x": 2}))
    assert client.read() == {"ok": 1}
    client.wait_ack(2)
    client.close()
    assert len(server.rows()) == 2


def test_a_burst_longer_than_max_line_bytes_is_framed_per_object(server_factory) -> None:
    server = server_factory(max_line_bytes=1024)
    client = Client(server.port, acks=True)
    burst = objects(*({"sh_id": "burst", "session": "s", "seq": n, "acc_x": n} for n in range(500)))
    assert len(burst) > 20 * 1024
    client.send_raw(burst + b"\n")
    client.wait_ack(500)
    client.close()
    assert [r["seq"] for r in server.rows()] == [str(n) for n in range(500)]
    assert server.rejects() == []


def test_one_object_longer_than_max_line_bytes_is_still_refused(server_factory) -> None:
    server = server_factory(max_line_bytes=1024)
    client = Client(server.port, acks=True)
    client.send_raw(objects({"sh_id": "a", "acc_x": 1}, {"sh_id": "a", "big": 1, "k" * 2000: 2}) + b"\n")
    client.wait_ack(2)
    assert "longer than 1024 bytes" in client.errors[0]["error"] and client.errors[0]["line"] == 2
    client.close()
    assert len(server.rows()) == 1


def test_a_leading_byte_order_mark_is_ignored(server) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"\xef\xbb")  # even split across segments
        sock.sendall(b'\xbf{"sh_id": "bom", "acc_x": 1}\n\xef\xbb\xbf{"sh_id": "bom", "acc_x": 2}\n')
    wait_for(lambda: server.rejects(), what="the second line's mark, which is not at the start, to be refused")
    assert [r["acc_x"] for r in server.rows()] == ["1"]
    assert server.rejects()[0]["line"] == 2


def test_syslog_ng_style_strings_and_epoch_times_are_stored(server) -> None:
    client = Client(server.port, acks=True)
    client.send({"sh_id": "sng", "time": 1764072000.25, "acc_z": "0.998", "acc_x": "-0.0120"})
    client.wait_ack(1)
    client.close()
    (row,) = server.rows()
    assert (row["time"], row["acc_z"], row["acc_x"]) == ("2025-11-25T12:00:00.250000Z", "0.998", "-0.0120")


def test_the_issue_reproduction_with_nc_stores_both(server) -> None:
    subprocess.run(["nc", "-q0", "127.0.0.1", str(server.port)], check=True, timeout=30,
                   input=b'{"sh_id":"a","acc_x":1}{"sh_id":"a","acc_x":2}')
    wait_for(lambda: len(server.rows()) == 2, what="both readings")
    assert server.rejects() == []


def test_a_broken_object_without_newline_waits_for_one_and_the_stream_goes_on(server) -> None:
    client = Client(server.port, acks=True)
    client.send_raw(b'{"sh_id": "a", "acc_x": 1}{"sh_id": "a", "note": "' + b"}{" * 5000)  # a string never closed
    client.wait_ack(1)
    client.send_raw(b"}{" * 5000)  # the rest doubles: looked at again, still no whole object
    client.send_raw(b'\n{"sh_id": "a", "acc_x": 2}{"sh_id": "a", "acc_x": 3}')
    client.wait_ack(4)
    assert [e["line"] for e in client.errors] == [2]
    client.close()
    assert [r["acc_x"] for r in server.rows()] == ["1", "2", "3"]


def test_a_hello_with_a_token_may_share_its_line(server_factory) -> None:
    server = server_factory(token="s3cret-token")
    client = Client(server.port)
    client.send_raw(objects({"hello": 1, "acks": True, "token": "s3cret-token"}, {"sh_id": "a", "acc_x": 1}) + b"\n")
    assert client.read() == {"ok": 1}
    client.wait_ack(1)
    client.close()
    assert len(server.rows()) == 1


def test_objects_after_a_long_line_that_ended_are_cut_apart_at_once(server) -> None:
    """A long rest that held no whole object is looked at again as soon as a newline ends it."""
    client = Client(server.port, acks=True)
    client.send_raw(b'{"sh_id": "a", "acc_x": 1} {"sh_id": "a",' + b" " * 5000)  # the second is not whole yet
    client.wait_ack(1)
    client.send_raw(b'"acc_x": 2}\n')
    client.wait_ack(2)
    client.send_raw(b'{"sh_id": "a", "acc_x": 3}{"sh_id": "a", "acc_x": 4}')  # no newline: cut as they complete
    client.wait_ack(4)
    client.close()
    assert [r["acc_x"] for r in server.rows()] == ["1", "2", "3", "4"]

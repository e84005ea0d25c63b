"""A real server process on loopback: framing, acks, bad lines, many clients, fire-and-forget clients."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading

import pytest
from harness import Client, ServerProcess, reading, wait_for

from whc.columns import NAMES, ORIGINAL_HEADER


def test_header_starts_with_the_original_columns(server: ServerProcess) -> None:
    header = server.csv_path.read_text().splitlines()[0].split(",")
    assert tuple(header[:11]) == ORIGINAL_HEADER
    assert tuple(header) == NAMES


def test_lines_split_across_and_merged_within_segments(server: ServerProcess) -> None:
    client = Client(server.port, acks=True)
    payload = b"".join(json.dumps(reading(seq=i)).encode() + b"\r\n" * (i % 2) + b"\n" * (1 - i % 2)
                       for i in range(50))
    for i in range(0, 399, 7):  # tiny segments that cut lines anywhere
        client.send_raw(payload[i:i + 7])
    client.send_raw(payload[399:])  # the rest in one go: many lines in one segment
    client.wait_ack(50)
    rows = server.rows()
    assert [int(r["seq"]) for r in rows] == list(range(50))
    assert rows[0]["acc_y"] == "-0.99" and rows[0]["sh_id"] == "rpi01"
    assert all(r["time"].endswith("Z") and len(r["time"]) == 27 for r in rows)


def test_acks_cover_rejects_and_duplicates_and_errors_name_the_line(server: ServerProcess) -> None:
    client = Client(server.port, acks=True)
    client.send(reading(seq=0))
    client.send_raw(b'{"sh_id": "a", "acc_x": NaN}\n')
    client.send(reading(seq=0), reading(seq=1))  # line 3 repeats seq 0: a duplicate
    client.wait_ack(4)
    assert client.errors == [{"error": "invalid JSON: NaN is not allowed", "line": 2}]
    assert [r["seq"] for r in server.rows()] == ["0", "1"]
    (record,) = server.rejects()
    assert record["line"] == 2 and record["src_ip"] == "127.0.0.1" and record["raw"] == '{"sh_id": "a", "acc_x": NaN}'


BAD_LINES = [
    b"not json",
    b"[1]",
    b'{"sh_id": "x", "acc_x": Infinity}',
    b'{"sh_id": "with space"}',
    b'{"sh_id": "x", "acc_x": "text"}',
    b'{"sh_id": "x", "acc_x": {"nested": 1}}',
    b'{"sh_id": "x\xff"}',
]


def test_every_kind_of_bad_line_is_recorded_and_good_ones_still_land(server: ServerProcess) -> None:
    client = Client(server.port, acks=True)
    client.send_raw(b"\n".join(BAD_LINES) + b"\n")
    client.send(reading(seq=5))
    client.wait_ack(len(BAD_LINES) + 1)
    assert [e["line"] for e in client.errors] == list(range(1, len(BAD_LINES) + 1))
    records = server.rejects()
    assert len(records) == len(BAD_LINES)
    assert records[-1]["raw_b64"], "invalid UTF-8 is kept verbatim as base64"
    assert [r["seq"] for r in server.rows()] == ["5"]


def test_oversize_line_is_rejected_and_connection_closed(server_factory) -> None:
    server = server_factory(max_line_bytes=1024)
    client = Client(server.port, acks=True)
    client.send(reading(seq=0))
    client.send_raw(b'{"sh_id": "a", "pad": "' + b"x" * 5000 + b'"}\n' + json.dumps(reading(seq=1)).encode() + b"\n")
    messages = []
    while (message := client.read()) is not None:
        messages.append(message)
    assert {"error": "line longer than 1024 bytes; connection closed", "line": 2} in messages
    assert messages[-1] == {"ack": 3}
    assert [r["seq"] for r in server.rows()] == ["0"]
    too_long, after = server.rejects()
    assert len(too_long["raw"]) == 1024
    assert after["line"] == 3 and "not stored: connection closing" in after["reason"], "received lines are recorded"


def test_plain_client_without_hello_gets_nothing_written_back(server: ServerProcess) -> None:
    client = Client(server.port)
    client.send(reading(), reading(sh_id="rpi02"))
    client.send_raw(b"garbage\n")
    client.sock.shutdown(socket.SHUT_WR)
    assert client.sock.recv(100) == b"", "the server closes without writing"
    wait_for(lambda: len(server.rejects()) == 1, what="the garbage line in the rejects log")
    assert [r["sh_id"] for r in server.rows()] == ["rpi01", "rpi02"]


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat not installed (.ci/run installs it)")
def test_fire_and_forget_socat_that_hangs_up_at_once(server: ServerProcess) -> None:
    lines = b"".join(json.dumps(reading(seq=i)).encode() + b"\n" for i in range(2000))
    lines += b'{"sh_id": "last-without-newline"}'
    subprocess.run(["socat", "-u", "-", f"TCP:127.0.0.1:{server.port}"], input=lines, check=True, timeout=20)
    rows = wait_for(lambda: len(server.rows()) == 2001 and server.rows(), what="2001 rows")
    assert [r["seq"] for r in rows[:2000]] == [str(i) for i in range(2000)]
    assert rows[-1]["sh_id"] == "last-without-newline"


def test_many_concurrent_connections_each_row_exactly_once(server: ServerProcess) -> None:
    clients, per_client = 40, 250

    def run(index: int) -> None:
        client = Client(server.port, acks=True)
        for start in range(0, per_client, 50):
            client.send(*(reading(sh_id=f"rpi{index:02d}", seq=i) for i in range(start, start + 50)))
        client.wait_ack(per_client, timeout=30)
        client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    rows = server.rows()
    assert len(rows) == clients * per_client
    seen = {(r["sh_id"], int(r["seq"])) for r in rows}
    assert seen == {(f"rpi{c:02d}", i) for c in range(clients) for i in range(per_client)}


def test_client_that_never_reads_its_acks_does_not_stall_others(server: ServerProcess) -> None:
    hog = Client(server.port, acks=True)
    hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.sock.settimeout(0.5)
    for block in range(40):  # up to 40,000 lines, thousands of acks the hog never reads
        try:
            hog.send(*(reading(sh_id="hog", seq=block * 1000 + i) for i in range(1000)))
        except TimeoutError:
            break
    honest = Client(server.port, acks=True)
    for i in range(20):
        honest.send(reading(sh_id="honest", seq=i))
        honest.wait_ack(i + 1, timeout=5)
    assert sum(r["sh_id"] == "honest" for r in server.rows()) == 20


def test_ipv6_loopback(server_factory) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    server = server_factory(ip="::1")
    client = Client(server.port, acks=True, host="::1")
    client.send(reading(seq=0))
    client.wait_ack(1)
    assert server.rows()[0]["src_ip"] == "::1"


def test_a_resent_stretch_in_big_blocks_is_stored_once(server: ServerProcess) -> None:
    """Blocks of one session are taken as runs: an overlapping resend, after a reconnect, lands once."""
    def block(seqs: range, **fields) -> bytes:
        return b"".join(json.dumps(reading(seq=seq, **fields)).encode() + b"\n" for seq in seqs)

    first = Client(server.port, acks=True)
    first.send_raw(block(range(300), time="2026-11-25T12:00:00.000000Z"))
    first.wait_ack(300)
    first.close()
    again = Client(server.port, acks=True)
    again.send_raw(block(range(200, 600), time="2026-11-25T12:00:01.000000Z"))
    again.send_raw(block(range(5), session="s2") + block(range(3), session="s2"))
    again.wait_ack(408)
    rows = server.rows()
    assert [(r["session"], int(r["seq"])) for r in rows] == \
        [("s1", seq) for seq in range(600)] + [("s2", seq) for seq in range(5)]
    assert {r["time"] for r in rows[:300]} == {"2026-11-25T12:00:00.000000Z"}
    assert {r["time"] for r in rows[300:600]} == {"2026-11-25T12:00:01.000000Z"}

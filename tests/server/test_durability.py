"""Crashes, restarts, shutdown, failing disks: no row lost, none written twice."""

from __future__ import annotations

import json
import resource
import signal
import threading
import time

from harness import Client, ServerProcess, read_rows, reading, wait_for

from whc.storage.sinks.csv import HEADER


def send_all(port: int, session: str, seqs: range, stop: threading.Event | None = None) -> int:
    """Send ``seqs`` with acks until done or the connection dies; return how many were acked."""
    try:
        client = Client(port, acks=True)
        for start in range(seqs.start, seqs.stop, 100):
            if stop is not None and stop.is_set():
                break
            client.send(*(reading(session=session, seq=i) for i in range(start, min(start + 100, seqs.stop))))
            client.read()
        client.wait_ack(len(seqs), timeout=20)
        return client.acked
    except (OSError, AssertionError):
        return client.acked if "client" in locals() else 0


def seqs_of(rows: list[dict[str, str]], session: str = "s1") -> list[int]:
    return [int(r["seq"]) for r in rows if r["session"] == session]


def test_kill_9_mid_stream_then_resend_unacked_no_loss_no_duplicate(server: ServerProcess) -> None:
    acked: list[int] = []
    thread = threading.Thread(target=lambda: acked.append(send_all(server.port, "s1", range(200_000))))
    thread.start()
    wait_for(lambda: len(server.csv_path.read_bytes()) > 200_000, 20, what="some rows on disk")
    server.kill()
    thread.join(30)
    acked_count = acked[0]
    on_disk = seqs_of(server.rows())
    assert len(on_disk) >= acked_count, "every acked row is on disk"
    server.start()
    # A sender resends everything not acked, and, to be sure, some that was.
    resend_from = max(0, acked_count - 500)
    client = Client(server.port, acks=True)
    client.send(*(reading(seq=i) for i in range(resend_from, 200_500)))
    client.wait_ack(200_500 - resend_from, timeout=30)
    assert seqs_of(server.rows()) == list(range(200_500))


def test_torn_last_line_is_moved_to_rejects_at_start(server_factory, tmp_path) -> None:
    csv_path = tmp_path / "whc_data.csv"
    good = "2026-01-01T00:00:00.000000Z,rpi01" + "," * 22 + "0,s1,2026-01-01T00:00:00.000000Z,127.0.0.1,\n"
    csv_path.write_text(HEADER + good + "2026-01-01T00:00:01.000000Z,rpi01,1.5,2.")
    server = server_factory()
    assert csv_path.read_text() == HEADER + good
    (record,) = server.rejects()
    assert record["raw"] == "2026-01-01T00:00:01.000000Z,rpi01,1.5,2." and "torn" in record["reason"]
    client = Client(server.port, acks=True)
    client.send(reading(seq=0), reading(seq=1))  # seq 0 is already stored: a duplicate
    client.wait_ack(2)
    assert seqs_of(server.rows()) == [0, 1]


def test_other_header_opens_a_new_file_and_keeps_using_it(server_factory, tmp_path) -> None:
    original = "time,sh_id,ori_r,ori_p,ori_y,gyr_x,gyr_y,gyr_z,acc_x,acc_y,acc_z\n12:00:00,rpi01,1,2,3,4,5,6,7,8,9\n"
    (tmp_path / "whc_data.csv").write_text(original)
    server = server_factory()
    client = Client(server.port, acks=True)
    client.send(reading(seq=0))
    client.wait_ack(1)
    assert (tmp_path / "whc_data.csv").read_text() == original, "the old file is never touched"
    (new_file,) = tmp_path.glob("whc_data-*.csv")
    assert "writing to the new file" in server.log_text() and new_file.name in server.log_text()
    assert seqs_of(read_rows(new_file)) == [0]
    assert server.stop() == 0
    server.start()
    client = Client(server.port, acks=True)
    client.send(reading(seq=0), reading(seq=1))
    client.wait_ack(2)
    assert list(tmp_path.glob("whc_data-*.csv")) == [new_file]
    assert seqs_of(read_rows(new_file)) == [0, 1]


def test_sigterm_commits_and_acks_what_was_received_then_exits_0(server: ServerProcess) -> None:
    client = Client(server.port, acks=True)
    client.send(*(reading(seq=i) for i in range(5000)))
    server.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    while client.read() is not None:
        pass
    assert server.proc.wait(10) == 0
    assert time.monotonic() - started < 5.5
    assert client.acked == 5000
    assert seqs_of(server.rows()) == list(range(5000))
    assert "stopped cleanly" in server.log_text()


def test_write_failure_stops_acks_keeps_connection_and_resumes(server: ServerProcess) -> None:
    client = Client(server.port, acks=True)
    client.send(*(reading(seq=i) for i in range(30)))  # the CSV must outgrow the log files, which the limit hits too
    client.wait_ack(30)
    size = server.csv_path.stat().st_size
    resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (size + 100, resource.RLIM_INFINITY))  # "disk full"
    client.send(*(reading(seq=i) for i in range(30, 50)))
    wait_for(lambda: "WRITES FAILING" in server.log_text(), what="the write error to be logged")
    assert client.quiet(0.5), "no ack may arrive while writes fail"
    assert server.csv_path.stat().st_size == size, "a failed commit leaves no partial rows behind"
    resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    client.wait_ack(50, timeout=15)
    assert seqs_of(server.rows()) == list(range(50))
    assert "writes succeed again" in server.log_text()


def test_allowlist_refuses_other_addresses_before_reading(server_factory) -> None:
    server = server_factory(allowed_ips=["127.0.0.1/32"])
    refused = Client(server.port, source="127.0.0.2")
    assert _closed_by_server(refused)
    allowed = Client(server.port, acks=True)
    allowed.send(reading(seq=0))
    allowed.wait_ack(1)
    assert [r["sh_id"] for r in server.rows()] == ["rpi01"]
    wait_for(lambda: "refused 127.0.0.2: not in allowed_ips" in server.log_text(), what="the refusal log line")
    for _ in range(5):  # a flood from the same address logs once a minute
        Client(server.port, source="127.0.0.2").close()
    allowed.send(reading(seq=1))
    allowed.wait_ack(2)
    assert server.log_text().count("refused 127.0.0.2") == 1


def test_connection_limits(server_factory) -> None:
    server = server_factory(max_connections_per_ip=2)
    first, second = Client(server.port, acks=True), Client(server.port, acks=True)
    assert _closed_by_server(Client(server.port))
    wait_for(lambda: "max_connections_per_ip (2) reached" in server.log_text(), what="the refusal log line")
    first.close()
    wait_for(lambda: _accepted(server.port), what="a slot to free up")
    second.send(reading(seq=0))
    second.wait_ack(1)


def test_300_connections_from_one_address_are_all_served(server: ServerProcess) -> None:
    """A fleet behind one NAT or proxy address is the normal case: the default limit must not bite it."""
    clients = []
    try:
        for index in range(300):
            clients.append(Client(server.port, acks=True, sh_id=f"rpi{index:03d}"))  # waits for the hello's ok
        for index, client in enumerate(clients):
            client.send(reading(sh_id=f"rpi{index:03d}", seq=0))
        for client in clients:
            client.wait_ack(1)
    finally:
        for client in clients:
            client.close()
    assert len(server.rows()) == 300
    assert "max_connections_per_ip" not in server.log_text()


def _closed_by_server(client: Client) -> bool:
    """True once the server has closed the connection (FIN, or RST since our data went unread)."""
    try:
        client.send(reading(sh_id="intruder"))
        client.sock.settimeout(5)
        return client.sock.recv(10) == b""
    except ConnectionResetError:
        return True
    except BrokenPipeError:
        return True


def _accepted(port: int) -> bool:
    try:
        Client(port, acks=True).close()
        return True
    except (OSError, AssertionError, json.JSONDecodeError):
        return False


def test_idle_connections_are_closed_after_idle_timeout(server_factory) -> None:
    server = server_factory(idle_timeout=1)
    idle = Client(server.port, acks=True)
    idle.send(reading(seq=0))
    idle.wait_ack(1)
    idle.send_raw(b'{"sh_id": "never-finished"')
    idle.sock.settimeout(10)
    started = time.monotonic()
    assert idle.read() is None, "closed by the server"
    assert 0.5 < time.monotonic() - started < 5
    records = wait_for(server.rejects, what="the unfinished line recorded")
    assert records[0]["raw"] == '{"sh_id": "never-finished"' and "idle timeout" in records[0]["reason"]


def test_sigterm_under_a_flood_still_exits_within_5_s(server: ServerProcess) -> None:
    """Found in review: shutdown read without a time or memory limit while clients kept sending."""
    stop = threading.Event()

    def flood(bad: bool) -> None:
        client = Client(server.port)
        line = b"x\n" if bad else json.dumps(reading()).encode() + b"\n"
        try:
            while not stop.is_set():
                client.send_raw(line * 5000)
        except OSError:
            pass

    threads = [threading.Thread(target=flood, args=(i % 2 == 0,), daemon=True) for i in range(6)]
    for thread in threads:
        thread.start()
    wait_for(lambda: server.csv_path.stat().st_size > 100_000, 20, what="the flood to be written")
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    try:
        code = server.proc.wait(15)
    finally:
        stop.set()
    assert time.monotonic() - started < 5.5
    assert code == 0

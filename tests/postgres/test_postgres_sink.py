"""The postgres sink against a real PostgreSQL: rows land once, with several servers, through crashes and restarts."""

from __future__ import annotations

import json
import subprocess
import threading
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from harness import PYTHON, ROOT, Client, SenderProcess, ServerProcess, reading, wait_for, write_config

from whc.exc import StorageError
from whc.protocol import decode_line, parse_reading
from whc.storage.sinks.postgres import PSYCOPG_PIN, PostgresSink


def keys(pg, session: str | None = None) -> Counter:
    """How often each (session, seq) is in the table (of one session, if given); ``pg`` is the fixture."""
    if session is None:
        return Counter(pg.query("SELECT session, seq FROM whc_readings WHERE session IS NOT NULL"))
    return Counter(pg.query("SELECT session, seq FROM whc_readings WHERE session = %s", session))


def seqs(pg, session: str = "s1") -> list[int]:
    return sorted(seq for (_, seq), n in keys(pg, session).items() for _ in range(n))


def start(server_factory, pg, folder: Path | None = None, **settings) -> ServerProcess:
    if folder is not None:
        folder.mkdir(exist_ok=True)
    settings.setdefault("postgres_dsn", pg.dsn)
    return server_factory(folder, sink="postgres", **settings)


def stream(port: int, session: str, seqs: range, acked: list[int], chunk: int = 200) -> None:
    """Send ``seqs`` with acks, reading acks as they come, until done or the connection dies."""
    client = None
    try:
        client = Client(port, acks=True)
        for first in range(seqs.start, seqs.stop, chunk):
            client.send(*(reading(session=session, seq=i) for i in range(first, min(first + chunk, seqs.stop))))
            client.read()
        client.wait_ack(len(seqs), timeout=30)
    except (OSError, AssertionError, ValueError):
        pass
    finally:
        acked.append(client.acked if client is not None else 0)


def test_rows_land_once_with_the_values_sent(server_factory, pg) -> None:
    server = start(server_factory, pg, postgres_dsn=pg.dsn + " password=hunter2")
    wait_for(lambda: "postgres table whc_readings on host 127.0.0.1" in server.log_text(), what="describe() logged")
    assert f"port {pg.cluster.port} dbname {pg.name}" in server.log_text()
    client = Client(server.port, acks=True)
    sent = [reading(seq=i, time=f"2026-11-24T12:{i // 60:02d}:{i % 60:02d}.{i:06d}Z", acc_x=i / 7, gyr_z=-i)
            for i in range(300)]
    client.send(*sent[:200])
    client.send(*sent[100:], sent[250], sent[250])  # resends, and the same row twice in one batch
    client.send(reading(acc_x=1.0), reading(acc_x=1.0))  # no session: cannot be deduplicated, both stored
    exact = ('{"sh_id": "rpi01", "session": "s1", "seq": 300, "time": "2026-11-24T14:00:00.5+01:00", '
             '"acc_x": 0.0120, "acc_y": -1e-5, "acc_z": 12345678901234567890, "lux": 2.50, "back\\\\slash": 1}\n')
    client.send_raw(exact.encode())
    total = 200 + 200 + 2 + 2 + 1
    client.wait_ack(total)
    assert not client.errors
    assert seqs(pg) == list(range(301)), "every (sh_id, session, seq) exactly once"
    assert pg.query("SELECT count(*) FROM whc_readings WHERE session IS NULL") == [(2,)]
    stored = {seq: (time, acc_x, gyr_z) for seq, time, acc_x, gyr_z in
              pg.query("SELECT seq, time, acc_x, gyr_z FROM whc_readings WHERE seq < 300")}
    for r in sent:
        assert stored[r["seq"]] == (datetime.fromisoformat(r["time"]), r["acc_x"], r["gyr_z"])
    ((time, acc_x, acc_y, acc_z, extra, recv_time, src_ip),) = pg.query(
        "SELECT time, acc_x, acc_y, acc_z, extra, recv_time, src_ip FROM whc_readings WHERE seq = 300")
    assert time == datetime.fromisoformat("2026-11-24T13:00:00.5Z")
    assert (acc_x, acc_y, acc_z) == (0.012, -1e-5, 12345678901234567890.0)
    assert extra == {"lux": 2.5, "back\\slash": 1}
    assert recv_time is not None and src_ip == "127.0.0.1"
    types = dict(pg.query("SELECT column_name, data_type FROM information_schema.columns "
                          "WHERE table_name = 'whc_readings'"))
    assert (types["time"], types["acc_x"], types["seq"], types["extra"]) == (
        "timestamp with time zone", "double precision", "bigint", "jsonb")
    assert server.stop() == 0
    assert "hunter2" not in server.log_text()


def test_a_number_too_small_for_a_double_is_refused_by_the_protocol(server_factory, pg) -> None:
    server = start(server_factory, pg)
    client = Client(server.port, acks=True)
    client.send(reading(seq=0))
    client.send_raw(b'{"sh_id": "rpi01", "session": "s1", "seq": 1, "acc_x": 1e-400}\n')
    client.send(reading(seq=2))
    client.wait_ack(3)
    assert client.errors[0]["line"] == 2 and "too small for a double" in client.errors[0]["error"]
    assert seqs(pg) == [0, 2]
    assert "WRITES FAILING" not in server.log_text()


def test_a_row_the_database_refuses_is_kept_aside_and_the_rest_commits(pg) -> None:
    """Defence in depth: a row the protocol let through but PostgreSQL refuses must not block every ack."""
    sink = PostgresSink(pg.dsn, "whc_readings")
    try:
        good = [sink.encode(parse_reading(decode_line(json.dumps(reading(seq=i)).encode()), "2026-01-01T00:00:00Z",
                                          "127.0.0.1")) for i in range(3)]
        key, seq, line = good[1]
        bad = (key, 99, line.replace("\t0.01\t", "\tnot-a-number\t").replace("\t1\ts1\t", "\t99\ts1\t"))
        sink.stage([good[0], bad, good[2]])
        assert sink.commit() == 2
        assert seqs(pg) == [0, 2]
        ((reason, stored),) = pg.query("SELECT reason, line FROM whc_readings_rejects")
        assert "not-a-number" in stored and "double precision" in reason
    finally:
        sink.close()


def test_two_servers_with_a_sender_failing_over_store_every_reading_once(server_factory, pg,
                                                                          tmp_path: Path) -> None:
    first = start(server_factory, pg, tmp_path / "server1")
    second = start(server_factory, pg, tmp_path / "server2")
    pi = tmp_path / "pi"
    pi.mkdir()
    config = write_config(pi, port=first.port, unit="rpi01", interval=0.02, fsync_interval=0.2, ack_timeout=3,
                          servers=[{"ip": "127.0.0.1", "port": first.port}, {"ip": "127.0.0.1", "port": second.port}])
    sender = SenderProcess(config).start()
    try:
        wait_for(lambda: pg.count() > 100, 20, what="readings through the first server")
        first.kill()
        before = pg.count()
        wait_for(lambda: pg.count() > before + 100, 20, what="readings through the second server")
    finally:
        assert sender.stop() == 0
    state = json.loads((pi / "spool" / "state.json").read_text())
    stored = keys(pg, state["session"])
    assert max(stored.values()) == 1, "no reading twice"
    waiting = {r["seq"] for r in sender.spooled()}
    assert not waiting & {seq for _, seq in stored}, "nothing both stored and still buffered"
    assert {seq for _, seq in stored} | waiting == set(range(state["next_seq"])), "nothing lost"
    assert second.stop() == 0


def test_two_servers_storing_the_same_readings_at_once_store_them_once(server_factory, pg,
                                                                       tmp_path: Path) -> None:
    servers = [start(server_factory, pg, tmp_path / f"server{i}") for i in (1, 2)]
    # Each client interleaves four sessions in its own order, so the two servers' concurrent
    # transactions meet the same keys in different arrival orders (the sink inserts in key order).
    orders = [["a", "b", "c", "d"], ["d", "c", "b", "a"]]
    batches = [[reading(session=s, seq=i) for i in range(first, first + 250) for s in order]
               for order in orders for first in range(0, 5000, 250)]
    per_client = len(batches) // 2
    clients = [Client(server.port, acks=True) for server in servers]

    def send(client: Client, mine: list) -> None:
        for batch in mine:
            client.send(*batch)

    threads = [threading.Thread(target=send, args=(c, batches[i * per_client:(i + 1) * per_client]))
               for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for client in clients:
        client.wait_ack(20_000, timeout=30)
    stored = keys(pg)
    assert len(stored) == 20_000 and max(stored.values()) == 1
    for server in servers:
        assert "WRITES FAILING" not in server.log_text(), "no commit failed (no deadlock)"
        assert server.stop() == 0


def test_database_restarted_mid_stream_acks_pause_then_resume(server_factory, pg) -> None:
    server = start(server_factory, pg)
    client = Client(server.port, acks=True)
    client.send(*(reading(seq=i) for i in range(1000)))
    client.wait_ack(1000)
    pg.cluster.stop("immediate")  # as if the database host crashed: no clean shutdown
    client.send(*(reading(seq=i) for i in range(1000, 2000)))
    wait_for(lambda: "WRITES FAILING" in server.log_text(), 15, what="the failed commit to be logged")
    while not client.quiet(0.3):  # acks of commits that finished before the crash
        assert client.read() is not None, "the server keeps the connection"
    assert client.acked < 2000
    assert client.quiet(1.0), "no ack while the database is down"
    client.send(*(reading(seq=i) for i in range(2000, 2500)))  # still accepted, just not acknowledged
    pg.cluster.start()
    client.wait_ack(2500, timeout=20)
    assert seqs(pg) == list(range(2500))
    wait_for(lambda: "writes succeed again" in server.log_text(), what="the recovery to be logged")
    assert server.stop() == 0


def test_server_starts_while_the_database_is_down_and_creates_the_table_later(server_factory, pg) -> None:
    pg.cluster.stop("fast")
    server = start(server_factory, pg)
    assert "cannot connect" in server.log_text() and "starting anyway" in server.log_text()
    client = Client(server.port, acks=True)
    client.send(*(reading(seq=i) for i in range(10)))
    assert client.quiet(1.0), "nothing acknowledged while nothing is stored"
    pg.cluster.start()
    client.wait_ack(10, timeout=20)
    assert seqs(pg) == list(range(10))
    assert server.stop() == 0


def test_kill_9_mid_batch_then_resend_unacked_exactly_once(server_factory, pg) -> None:
    server = start(server_factory, pg)
    total = 60_000
    acked: list[int] = []
    thread = threading.Thread(target=stream, args=(server.port, "s1", range(total), acked))
    thread.start()
    wait_for(lambda: pg.count() > 10_000, 20, what="rows in the table")
    server.kill()
    thread.join(30)
    assert pg.count() >= acked[0], "every acknowledged row is in the table"
    server.start()
    resend_from = max(0, acked[0] - 500)  # everything unacknowledged, and some that was
    client = Client(server.port, acks=True)
    client.send(*(reading(seq=i) for i in range(resend_from, total)))
    client.wait_ack(total - resend_from, timeout=30)
    assert seqs(pg) == list(range(total))
    assert server.stop() == 0


def staged_sink(pg) -> PostgresSink:
    """A sink (in this process) with two readings without session, which only exactly-once commits keep single."""
    sink = PostgresSink(pg.dsn, "whc_readings")
    readings = [reading(acc_x=1.0), reading(acc_x=2.0), reading(seq=0)]
    parsed = [parse_reading(decode_line(json.dumps(r).encode()), "2026-01-01T00:00:00.000000Z", "127.0.0.1")
              for r in readings]
    sink.stage([sink.encode(r) for r in parsed])
    return sink


def retry_commit(sink: PostgresSink) -> int | None:
    try:
        return sink.commit()
    except StorageError:
        return None


def test_a_commit_whose_answer_was_lost_is_not_written_again(pg) -> None:
    import psycopg  # here, not at the top: without it the pg fixture fails with the fix to run

    sink = staged_sink(pg)
    conn = sink._conn
    real_commit = conn.commit

    def commit_then_lose_the_answer() -> None:
        real_commit()
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    conn.commit = commit_then_lose_the_answer
    with pytest.raises(StorageError, match="commit failed: server closed the connection unexpectedly"):
        sink.commit()
    assert sink.commit() == 3, "the next attempt finds the first one landed and reports its rows"
    assert pg.count() == 3, "readings without session are not stored twice either"
    sink.close()


def test_a_commit_lost_before_it_landed_is_written_on_retry(pg) -> None:
    import psycopg

    sink = staged_sink(pg)
    conn = sink._conn

    def lose_the_connection() -> None:
        conn.close()
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    conn.commit = lose_the_connection
    with pytest.raises(StorageError):
        sink.commit()
    assert pg.count() == 0
    assert wait_for(lambda: retry_commit(sink), what="the retry to commit") == 3
    assert pg.count() == 3
    sink.close()


def run_server(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, str(ROOT / "launch_server.py"), "--config", str(config)], capture_output=True,
                          text=True, timeout=30, cwd=config.parent, env=env or None)


def test_without_psycopg_the_server_exits_2_naming_the_install_line(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "psycopg"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("psycopg hidden by the test")\n')
    config = write_config(tmp_path, sink="postgres", postgres_dsn="host=127.0.0.1 dbname=whc")
    result = run_server(config, PATH="/usr/bin:/bin", PYTHONPATH=str(shadow.parent))
    assert result.returncode == 2, result.stderr
    assert f"sink 'postgres' needs psycopg 3: pip install '{PSYCOPG_PIN}'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_malformed_dsn_exits_2_without_echoing_it(tmp_path: Path) -> None:
    config = write_config(tmp_path, sink="postgres", postgres_dsn="host=127.0.0.1 password hunter2")
    result = run_server(config)
    assert result.returncode == 2
    assert "key 'postgres_dsn': not a valid PostgreSQL connection string" in result.stderr
    assert "hunter2" not in result.stderr + (tmp_path / "server.log").read_text()


def test_requirements_file_pins_the_version_the_error_message_names() -> None:
    assert PSYCOPG_PIN in (ROOT / "requirements-postgres.txt").read_text().splitlines()


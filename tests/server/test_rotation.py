"""CSV rotation with real server processes: by size under load and kill -9, by time with a test clock,
compression and expiry, a full disk at the switch, and SIGHUP after a real logrotate run."""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import Client, ServerProcess, reading, wait_for

from whc.storage.csvnames import closed_files
from whc.storage.sinks.csv import HEADER, format_row

SESSIONS = ("s1", "s2", "s3", "s4")


def file_rows(path: Path) -> list[dict[str, str]]:
    """Rows of one CSV, plain or gzipped; every file must start with the header."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    text = data.decode()
    assert text.startswith(HEADER), f"{path.name} does not start with the header"
    return list(csv.DictReader(io.StringIO(text)))


def all_rows(server: ServerProcess) -> list[dict[str, str]]:
    """Every row the server stored: closed files oldest first, then the active file."""
    rows = []
    for path in [*closed_files(server.csv_path), server.csv_path]:
        rows.extend(file_rows(path))
    return rows


def stored_keys(rows: list[dict[str, str]]) -> list[tuple[str, int]]:
    return [(row["session"], int(row["seq"])) for row in rows]


def send_round(clients: dict[str, Client], start: int, count: int) -> None:
    for session, client in clients.items():
        client.send(*(reading(seq=i, session=session) for i in range(start, start + count)))


@pytest.mark.parametrize("keep_state", [True, False], ids=["with-state", "state-lost"])
def test_size_rotation_under_load_and_kill_9_keeps_every_reading_once(server_factory, keep_state: bool) -> None:
    server = server_factory(csv_max_bytes=16384, csv_compress=True)
    per_session, chunk = 1200, 50
    clients = {session: Client(server.port, acks=True) for session in SESSIONS}
    for start in range(0, per_session // 2, chunk):
        send_round(clients, start, chunk)
        for client in clients.values():
            client.wait_ack(start + chunk)
    send_round(clients, per_session // 2, chunk)  # in flight when the server dies
    server.kill()
    assert len(closed_files(server.csv_path)) > 3
    if not keep_state:
        server.csv_path.with_name("whc_data.csv.state").unlink()
    server.start()
    clients = {session: Client(server.port, acks=True) for session in SESSIONS}
    for start in range(0, per_session, chunk * 4):  # resend everything: what was stored is a duplicate
        send_round(clients, start, chunk * 4)
        for client in clients.values():
            client.wait_ack(start + chunk * 4, timeout=30)
    wait_for(lambda: all(p.suffix == ".gz" for p in closed_files(server.csv_path)), 20, what="compression")
    assert server.stop() == 0
    keys = stored_keys(all_rows(server))
    expected = sorted((session, seq) for session in SESSIONS for seq in range(per_session))
    assert sorted(keys) == expected, "every reading exactly once across all files"
    for path in closed_files(server.csv_path):
        assert path.stat().st_size > 0 and path.name.endswith(".csv.gz")
        # a file passes the limit only by what one commit holds: at most one round of sends here (rows < 160 B)
        assert len(gzip.decompress(path.read_bytes())) <= 16384 + len(SESSIONS) * chunk * 4 * 160
    names = [p.name for p in closed_files(server.csv_path)]
    assert names == sorted(names) and not list(server.folder.glob("*.tmp")) and not list(server.folder.glob("*.new"))
    first_times = [file_rows(p)[0]["recv_time"] for p in closed_files(server.csv_path)]
    assert first_times == sorted(first_times)
    for path, first in zip(closed_files(server.csv_path), first_times, strict=True):
        assert path.name[len("whc_data-"):][:16] == first[:19].replace("-", "").replace(":", "") + "Z"


@pytest.mark.parametrize("every,period", [("hourly", 3600), ("daily", 86400)])
def test_time_rotation_on_the_utc_boundary_with_a_test_clock(server_factory, every: str, period: int) -> None:
    now = time.time()
    boundary = math.ceil(now / period) * period
    offset = boundary - 8 - now  # the server's clock starts 8 s before the hour or day ends
    server = server_factory(start=False, csv_rotate=every)
    server.start(env={"WHC_TEST_CLOCK_OFFSET": repr(offset)})
    client = Client(server.port, acks=True)
    client.send(*(reading(seq=i) for i in range(20)))
    client.wait_ack(20)
    assert all(row["recv_time"] < time_text(boundary) for row in file_rows(server.csv_path)), "sent too late"
    assert closed_files(server.csv_path) == []
    (closed,) = wait_for(lambda: closed_files(server.csv_path), 20, what="the file to close at the boundary")
    client.send(*(reading(seq=i) for i in range(20, 40)))
    client.wait_ack(40)
    before, after = file_rows(closed), file_rows(server.csv_path)
    assert stored_keys(before + after) == [("s1", i) for i in range(40)]
    assert all(row["recv_time"] < time_text(boundary) for row in before)
    assert all(row["recv_time"] >= time_text(boundary) for row in after)
    assert closed.name == f"whc_data-{before[0]['recv_time'][:19].replace('-', '').replace(':', '')}Z.csv"
    assert server.stop() == 0


def time_text(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def test_expiry_deletes_only_closed_files_older_than_keep_days(server_factory) -> None:
    server = server_factory(csv_max_bytes=4096, csv_compress=True, csv_keep_days=2)
    client = Client(server.port, acks=True)
    for start in range(0, 200, 20):
        client.send(*(reading(seq=i) for i in range(start, start + 20)))
        client.wait_ack(start + 20)
    wait_for(lambda: len(closed_files(server.csv_path)) >= 4 and
             all(p.suffix == ".gz" for p in closed_files(server.csv_path)), 15, what="compressed closed files")
    old = closed_files(server.csv_path)[:2]
    month_ago = time.time() - 30 * 86400
    for path in old:
        os.utime(path, (month_ago, month_ago))
    kept = closed_files(server.csv_path)[2:]
    os.utime(server.csv_path, (month_ago, month_ago))  # the active file is never expired, however old
    client.send(*(reading(seq=i) for i in range(200, 240)))  # the next switch wakes the housekeeper
    client.wait_ack(240)
    wait_for(lambda: not any(p.exists() for p in old), 15, what="the old files to expire")
    assert all(p.exists() for p in kept) and server.csv_path.exists()
    assert "expired" in server.log_text()
    assert server.stop() == 0


def test_a_failing_switch_acknowledges_nothing_and_loses_nothing(server_factory) -> None:
    server = server_factory(csv_max_bytes=8192)
    client = Client(server.port, acks=True)
    client.send(*(reading(seq=i) for i in range(30)))
    client.wait_ack(30)
    size = server.csv_path.stat().st_size
    obstacle = server.csv_path.with_name("whc_data.csv.new")
    obstacle.mkdir()  # the new file cannot be created, as on a full disk
    client.send(*(reading(seq=i) for i in range(30, 90)))
    wait_for(lambda: "WRITES FAILING" in server.log_text(), what="the write error to be logged")
    assert client.quiet(0.5), "no ack may arrive while the switch fails"
    assert closed_files(server.csv_path) == [] and server.csv_path.stat().st_size == size
    obstacle.rmdir()
    client.wait_ack(90, timeout=15)
    assert len(closed_files(server.csv_path)) == 1
    assert stored_keys(all_rows(server)) == [("s1", i) for i in range(90)]
    assert server.stop() == 0


LOGROTATE = shutil.which("logrotate") or "/usr/sbin/logrotate"


def test_sighup_after_a_real_logrotate_reopens_the_csv_and_rejects_log(server_factory, tmp_path: Path) -> None:
    assert Path(LOGROTATE).exists(), "logrotate missing: bash scripts/test.sh installs it (apt-get install logrotate)"
    server = server_factory()
    client = Client(server.port, acks=True)
    client.send(*(reading(seq=i) for i in range(50)), {"bad": 1})
    client.wait_ack(51)
    config = tmp_path / "logrotate.conf"
    config.write_text(f"""{server.csv_path} {server.rejects_path} {{
    create 0644
    rotate 3
    missingok
    sharedscripts
    postrotate
        kill -HUP {server.proc.pid}
    endscript
}}
""")
    result = subprocess.run([LOGROTATE, "-f", "-s", str(tmp_path / "logrotate.state"), str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: "reopened" in server.log_text(), what="the server to reopen its files")
    client.send(*(reading(seq=i) for i in range(40, 80)), {"bad": 2})  # 40-49 are resends
    client.wait_ack(92)
    old = file_rows(server.csv_path.with_name("whc_data.csv.1"))
    new = file_rows(server.csv_path)
    assert stored_keys(old) == [("s1", i) for i in range(50)]
    assert stored_keys(new) == [("s1", i) for i in range(50, 80)]
    old_rejects = server.rejects_path.with_name(server.rejects_path.name + ".1").read_text().splitlines()
    assert len(old_rejects) == 1 and len(server.rejects()) == 1
    assert os.stat(server.rejects_path).st_mode & 0o777 == 0o600, "the reopened rejects log stays private"
    assert server.stop() == 0


def test_sighup_without_rotation_keeps_appending(server: ServerProcess) -> None:
    client = Client(server.port, acks=True)
    client.send(*(reading(seq=i) for i in range(10)))
    client.wait_ack(10)
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reopened" in server.log_text(), what="the server to reopen its files")
    client.send(*(reading(seq=i) for i in range(10, 20)))
    client.wait_ack(20)
    assert stored_keys(file_rows(server.csv_path)) == [("s1", i) for i in range(20)]
    assert server.stop() == 0


def _rows_text(seqs: range) -> str:
    return "".join(format_row({"time": f"2026-01-01T00:00:{i:02d}.000000Z", "sh_id": "rpi01", "seq": i,
                               "session": "s1", "recv_time": f"2026-01-01T00:00:{i:02d}.000000Z",
                               "src_ip": "127.0.0.1"}) for i in seqs)


@pytest.mark.parametrize("crash_after", ["link", "rename"])
def test_a_switch_interrupted_by_a_crash_is_undone_or_finished_at_start(server_factory, tmp_path: Path,
                                                                        crash_after: str) -> None:
    active = tmp_path / "whc_data.csv"
    closed = tmp_path / "whc_data-20260101T000000Z.csv"
    active.write_text(HEADER + _rows_text(range(10)))
    (tmp_path / "whc_data.csv.new").write_text(HEADER)
    if crash_after == "link":  # the old file has both names; the new one was not yet renamed over it
        os.link(active, closed)
    else:  # no hard links: the old file was renamed, the new one not yet
        os.rename(active, closed)
    server = server_factory(csv_max_bytes=8192)
    assert not (tmp_path / "whc_data.csv.new").exists()
    assert ("undid" if crash_after == "link" else "finished") in server.log_text()
    client = Client(server.port, acks=True)
    client.send(*(reading(seq=i) for i in range(15)))  # 0-9 are stored already
    client.wait_ack(15)
    assert stored_keys(all_rows(server)) == [("s1", i) for i in range(15)]
    assert closed_files(server.csv_path) == ([] if crash_after == "link" else [closed])
    assert server.stop() == 0


def test_compression_that_fails_keeps_the_plain_file_and_is_retried(server_factory) -> None:
    server = server_factory(csv_max_bytes=4096, csv_compress=True)
    client = Client(server.port, acks=True)
    client.send(*(reading(seq=i) for i in range(20)))
    client.wait_ack(20)
    first = closed_files(server.csv_path)
    assert first == [], "nothing closed yet"
    obstacles = []  # a folder where each closed file's .gz.tmp goes makes its compression fail
    for seconds in range(-2, 30):  # the files this test closes begin within these seconds of now
        for suffix in ("", "_001", "_002", "_003", "_004", "_005"):
            name = time.strftime(f"whc_data-%Y%m%dT%H%M%SZ{suffix}.csv.gz.tmp", time.gmtime(time.time() + seconds))
            obstacles.append(server.csv_path.with_name(name))
    for obstacle in obstacles:
        obstacle.mkdir(exist_ok=True)
    for start in range(20, 100, 20):
        client.send(*(reading(seq=i) for i in range(start, start + 20)))
        client.wait_ack(start + 20)
    wait_for(lambda: "could not compress" in server.log_text(), what="the compression failure to be logged")
    assert closed_files(server.csv_path) and all(p.suffix == ".csv" for p in closed_files(server.csv_path))
    for obstacle in obstacles:
        obstacle.rmdir()
    client.send(*(reading(seq=i) for i in range(100, 140)))  # the next switch wakes the housekeeper
    client.wait_ack(140)
    wait_for(lambda: all(p.suffix == ".gz" for p in closed_files(server.csv_path)), 15, what="compression")
    assert stored_keys(all_rows(server)) == [("s1", i) for i in range(140)]
    assert server.stop() == 0


def test_another_header_and_rotation_share_one_naming_scheme(server_factory, tmp_path: Path) -> None:
    original = "time,sh_id,ori_r,ori_p,ori_y,gyr_x,gyr_y,gyr_z,acc_x,acc_y,acc_z\n12:00:00,rpi01,1,2,3,4,5,6,7,8,9\n"
    (tmp_path / "whc_data.csv").write_text(original)
    server = server_factory(csv_max_bytes=4096)
    active = tmp_path / "whc_data-active.csv"
    client = Client(server.port, acks=True)
    for start in range(0, 100, 20):
        client.send(*(reading(seq=i) for i in range(start, start + 20)))
        client.wait_ack(start + 20)
    assert server.stop() == 0
    closed = closed_files(server.csv_path)
    assert len(closed) >= 2 and active not in closed
    sizes = {path: path.stat().st_size for path in closed}
    server.start()  # a closed file is never taken for the active one
    client = Client(server.port, acks=True)
    client.send(*(reading(seq=i) for i in range(95, 110)))
    client.wait_ack(15)
    assert server.stop() == 0
    assert {path: path.stat().st_size for path in closed} == sizes
    assert (tmp_path / "whc_data.csv").read_text() == original, "the other file is never touched"
    rows = [row for path in [*closed_files(server.csv_path), active] for row in file_rows(path)]
    assert stored_keys(rows) == [("s1", i) for i in range(110)]
    assert stored_keys(file_rows(active))[-1] == ("s1", 109)


@pytest.mark.parametrize(("setting", "expected"), [
    ('"csv_rotate": "weekly"', "key 'csv_rotate' must be one of 'none', 'hourly', 'daily'"),
    ('"csv_max_bytes": 100', "key 'csv_max_bytes' must be 0 (no limit) or an integer >= 4096"),
    ('"csv_keep_days": -1', "key 'csv_keep_days' must be a finite number >= 0"),
    ('"csv_compress": "yes"', "key 'csv_compress' must be true or false"),
])
def test_bad_rotation_settings_fail_with_one_line(tmp_path: Path, setting: str, expected: str) -> None:
    config = tmp_path / "server.json"
    config.write_text('{"ip": "127.0.0.1", "port": 5000, ' + setting + "}")
    result = subprocess.run([sys.executable, str(Path(__file__).parents[2] / "launch_server.py"), "--config",
                             str(config)], capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert result.returncode == 2 and expected in result.stderr and str(config) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_really_full_disk_during_rotation_acknowledges_nothing_unwritten_and_loses_nothing(
        server_factory, tmp_path: Path) -> None:
    """The CSV, its closed files, state and rejects log on a small tmpfs that fills up (CI runs as root)."""
    from mounts import tmpfs

    with tmpfs(tmp_path / "disk", "1m") as disk:
        server = server_factory(csv=str(disk / "whc_data.csv"), csv_max_bytes=16384, csv_compress=True)
        client = Client(server.port, acks=True)
        client.send(*(reading(seq=i) for i in range(50)))
        client.wait_ack(50)
        filler = disk / "filler"
        with open(filler, "wb", buffering=0) as file:  # take every free block
            try:
                for _ in range(1024):
                    file.write(b"\0" * 4096)
            except OSError:
                pass
        client.send(*(reading(seq=i) for i in range(50, 600)))
        wait_for(lambda: "WRITES FAILING" in server.log_text(), 20, what="the write failure to be logged")
        while not client.quiet(0.5):  # take every ack sent so far
            if client.read() is None:
                break
        on_disk = sum(data.count(b"\n") - 1 for data in
                      (gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
                       for p in [*closed_files(server.csv_path), server.csv_path]))
        assert 50 <= client.acked <= on_disk < 600, "only what is on disk is acknowledged"
        filler.unlink()
        client.wait_ack(600, timeout=30)
        assert stored_keys(all_rows(server)) == [("s1", i) for i in range(600)], "each reading once, in order"
        assert "writes succeed again" in server.log_text()
        assert server.stop() == 0

"""report.py over rotated and gzipped files equals report.py over the same rows in one file."""

from __future__ import annotations

import gzip
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from harness import PYTHON, ROOT, Client, ServerProcess, reading, wait_for

from whc.reporting.build import Options, build_report
from whc.reporting.files import MultiStream, expand, open_stream
from whc.storage.csvnames import closed_files

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def readings(unit: str, session: str, seqs: range, step: float, skip: range = range(0)) -> list[dict]:
    """Readings ``step`` seconds apart; the seqs in ``skip`` are never sent (a hole and a gap)."""
    return [reading(sh_id=unit, session=session, seq=seq, time=(START + timedelta(seconds=seq * step)).isoformat(),
                    temp_h=20 + seq % 7, humidity=40.5 + seq % 3)
            for seq in seqs if seq not in skip]


def rotating_server(server_factory, folder: Path) -> ServerProcess:
    folder.mkdir()
    return server_factory(folder, csv_max_bytes=16384, csv_compress=True)


def fill(server: ServerProcess) -> None:
    """Three units on three connections, in rounds, so the server switches files many times."""
    clients = {unit: Client(server.port, acks=True) for unit in ("rpi01", "rpi02", "rpi03")}
    sent = dict.fromkeys(clients, 0)
    for start in range(0, 900, 100):
        for number, (unit, client) in enumerate(clients.items()):
            batch = readings(unit, f"s{number}", range(start, start + 100), 0.1 * (number + 1), skip=range(400, 420))
            client.send(*batch)
            sent[unit] += len(batch)
        for unit, client in clients.items():
            client.wait_ack(sent[unit])


def one_file(server: ServerProcess, target: Path) -> Path:
    """The server's files, oldest first, joined into one CSV with one header."""
    parts = []
    for number, path in enumerate([*closed_files(server.csv_path), server.csv_path]):
        text = (gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()).decode()
        parts.append(text if number == 0 else text.split("\n", 1)[1])
    target.mkdir()
    joined = target / "whc_data.csv"
    joined.write_text("".join(parts))
    return joined


def run_report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, str(ROOT / "report.py"), *args], capture_output=True, text=True, timeout=120)


def test_report_over_rotated_gzipped_files_equals_one_file(server_factory, tmp_path: Path) -> None:
    server = rotating_server(server_factory, tmp_path / "server")
    fill(server)
    def all_compressed() -> bool:
        closed = closed_files(server.csv_path)
        return len(closed) > 5 and all(path.suffix == ".gz" for path in closed)

    wait_for(all_compressed, 30, what="the background gzip of every closed file")
    assert server.stop() == 0
    closed = closed_files(server.csv_path)
    assert len(closed) > 5 and all(path.suffix == ".gz" for path in closed)
    joined = one_file(server, tmp_path / "joined")

    stream = open_stream([str(server.csv_path)])
    assert isinstance(stream, MultiStream) and stream.paths == [*closed, server.csv_path]
    options = Options(plots=True)
    rotated, single = build_report(stream, options), build_report(joined, options)
    assert rotated.units == single.units and rotated.invalid == single.invalid
    assert [u.rows for u in rotated.units] == [880, 880, 880] and all(u.missing_seq == 20 for u in rotated.units)
    for unit, envelope in single.envelopes.items():
        other = rotated.envelopes[unit]
        for name in ("min", "max", "sum", "count", "rows", "time_sum"):
            assert np.array_equal(getattr(envelope, name), getattr(other, name)), (unit, name)

    open_files = []
    baseline = len(os.listdir("/proc/self/fd"))
    for number, _row in enumerate(open_stream([str(server.csv_path)]).rows()):
        if number % 100 == 0:
            open_files.append(len(os.listdir("/proc/self/fd")) - baseline)
    assert max(open_files) <= 2, "files that do not overlap in time are read one after the other"

    by_path = run_report(str(server.csv_path), "--no-plots", "--out", str(tmp_path / "r1"))
    by_glob = run_report(str(server.folder / "whc_data*.csv*"), "--no-plots", "--out", str(tmp_path / "r2"))
    by_config = run_report(str(server.config_path), "--no-plots", "--out", str(tmp_path / "r3"))
    plain = run_report(str(joined), "--no-plots", "--out", str(tmp_path / "r4"))
    for result in (by_path, by_glob, by_config, plain):
        assert result.returncode == 0, result.stderr
    expected = (tmp_path / "r4" / "summary.csv").read_text()
    for folder in ("r1", "r2", "r3"):
        assert (tmp_path / folder / "summary.csv").read_text() == expected


def test_expand_takes_closed_files_and_gz_literally(tmp_path: Path) -> None:
    for name in ("whc_data.csv", "whc_data-20261124T120000Z.csv.gz", "whc_data-20261124T130000Z.csv",
                 "whc_data-20261124T130000Z_001.csv", "other.csv"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in expand([str(tmp_path / "whc_data.csv")])] == [
        "whc_data-20261124T120000Z.csv.gz", "whc_data-20261124T130000Z.csv", "whc_data-20261124T130000Z_001.csv",
        "whc_data.csv"]
    assert [p.name for p in expand([str(tmp_path / "whc_data-20261124T130000Z.csv")])] == [
        "whc_data-20261124T130000Z.csv"]
    assert [p.name for p in expand([str(tmp_path / "*.csv"), str(tmp_path / "other.csv")])] == [
        "other.csv", "whc_data-20261124T130000Z.csv", "whc_data-20261124T130000Z_001.csv", "whc_data.csv"]


def test_a_truncated_gz_is_counted_not_fatal(server_factory, tmp_path: Path) -> None:
    server = rotating_server(server_factory, tmp_path / "server")
    fill(server)
    assert server.stop() == 0
    victim = closed_files(server.csv_path)[1]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    result = run_report(str(server.csv_path), "--no-plots", "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    assert f"damaged file {victim.name}" in (tmp_path / "r" / "summary.md").read_text()


def test_files_that_overlap_in_time_are_merged_by_receive_time(tmp_path: Path) -> None:
    from whc.storage.sinks.csv import HEADER, format_row

    def row(unit: str, second: int) -> str:
        stamp = (START + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return format_row({"time": stamp, "sh_id": unit, "seq": second, "session": "s", "recv_time": stamp,
                           "src_ip": "127.0.0.1"})

    (tmp_path / "a.csv").write_text(HEADER + "".join(row("a", s) for s in range(0, 100, 2)))
    (tmp_path / "b.csv").write_text(HEADER + "".join(row("b", s) for s in range(1, 100, 2)))
    (tmp_path / "c.csv").write_text(HEADER + "".join(row("c", s) for s in range(200, 210)))
    stream = open_stream([str(tmp_path / "c.csv"), str(tmp_path / "a.csv"), str(tmp_path / "b.csv")])
    seconds = [int(r[stream.layout.index("seq")]) for r in stream.rows()]
    assert seconds == [*range(100), *range(200, 210)]

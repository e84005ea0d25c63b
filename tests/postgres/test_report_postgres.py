"""report.py --postgres (and a server.json whose sink is postgres) equals report.py on the CSV of the same readings."""

from __future__ import annotations

import csv
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import PYTHON, ROOT, Client, reading

from whc.columns import NAMES
from whc.reporting.build import Options, build_report
from whc.reporting.files import open_stream
from whc.reporting.pgstream import PostgresStream

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
RECEIVE_TIMES = {"clock_offset_median_ms", "clock_offset_max_ms"}  # differ between two servers receiving


def readings(unit: str, session: str, seqs: range, step: float) -> list[dict]:
    return [reading(sh_id=unit, session=session, seq=seq, time=(START + timedelta(seconds=seq * step)).isoformat(),
                    temp_h=20.25 + seq % 7, humidity=40.5 + seq % 3, pressure=1013.125, extra_x=seq)
            for seq in seqs if not 300 <= seq < 330]


def send_everything(ports: list[int]) -> None:
    """The same readings, from three units on three connections, to every server."""
    for port in ports:
        clients = {unit: Client(port, acks=True) for unit in ("rpi01", "rpi02", "rpi03")}
        sent = dict.fromkeys(clients, 0)
        for start in range(0, 600, 100):
            for number, (unit, client) in enumerate(clients.items()):
                batch = readings(unit, f"s{number}", range(start, start + 100), 0.05 * (number + 1))
                client.send(*batch)
                sent[unit] += len(batch)
            for unit, client in clients.items():
                client.wait_ack(sent[unit])


def run_report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, str(ROOT / "report.py"), *args], capture_output=True, text=True, timeout=120)


def summary(folder: Path, leave_out: set[str] = frozenset()) -> list[dict[str, str]]:
    with open(folder / "summary.csv", newline="") as file:
        return [{k: v for k, v in row.items() if k not in leave_out} for row in csv.DictReader(file)]


def test_report_from_postgres_equals_report_from_csv(server_factory, pg, tmp_path: Path) -> None:
    (tmp_path / "pg").mkdir()
    (tmp_path / "csv").mkdir()
    pg_server = server_factory(tmp_path / "pg", sink="postgres", postgres_dsn=pg.dsn)
    csv_server = server_factory(tmp_path / "csv", csv_max_bytes=32768, csv_compress=True)
    send_everything([pg_server.port, csv_server.port])
    assert pg_server.stop() == 0 and csv_server.stop() == 0
    assert pg.count() == 3 * 570

    from_pg = run_report("--postgres", pg.dsn, "--no-plots", "--out", str(tmp_path / "r-pg"))
    from_config = run_report(str(pg_server.config_path), "--no-plots", "--out", str(tmp_path / "r-config"))
    from_csv = run_report(str(csv_server.csv_path), "--no-plots", "--out", str(tmp_path / "r-csv"))
    for result in (from_pg, from_config, from_csv):
        assert result.returncode == 0, result.stderr
    expected = summary(tmp_path / "r-csv", RECEIVE_TIMES)
    assert [row["rows"] for row in expected] == ["570", "570", "570"]
    assert summary(tmp_path / "r-pg", RECEIVE_TIMES) == expected
    assert summary(tmp_path / "r-config") == summary(tmp_path / "r-pg")

    # the CSV server's very rows, receive times included, copied into a table: the reports are identical
    with pg.cluster.connect(pg.name, autocommit=True) as conn:
        conn.execute("CREATE TABLE csv_copy (LIKE whc_readings INCLUDING DEFAULTS)")
        with conn.cursor().copy(f"COPY csv_copy ({', '.join(NAMES)}) FROM STDIN") as copy:
            for row in open_stream([str(csv_server.csv_path)]).rows():
                copy.write_row([cell if cell != "" else None for cell in row])
    options = Options(plots=True)
    from_table = build_report(PostgresStream(pg.dsn, "csv_copy"), options)
    from_files = build_report(open_stream([str(csv_server.csv_path)]), options)
    assert from_table.units == from_files.units and from_table.invalid.total == 0
    for unit, envelope in from_files.envelopes.items():
        other = from_table.envelopes[unit]
        assert (envelope.count == other.count).all() and (envelope.rows == other.rows).all()
        assert abs(envelope.sum - other.sum).max() < 1e-6


def test_report_postgres_without_the_table_says_so(pg, tmp_path: Path) -> None:
    result = run_report("--postgres", pg.dsn, "--table", "nothing_here", "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "no table 'nothing_here'" in result.stderr

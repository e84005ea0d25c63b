#!/usr/bin/env python3
"""Benchmark the postgres sink: readings/s committed to PostgreSQL, one server and two, next to the CSV sink.

Starts launch_server.py processes in temporary folders, drives them over loopback with
bench/loadgen.py (64 clients flat out by default), counts the rows that reached the CSV or the
table, and prints one line per scenario. Numbers are printed, not asserted.

Without --dsn it runs a throwaway PostgreSQL cluster (as the tests do: Debian's postgresql
package, fsync on); with --dsn it uses that database, whose readings table it empties first.

    python3 bench/bench_postgres.py                         # csv, postgres with 1 server, with 2 servers
    python3 bench/bench_postgres.py --seconds 10 --clients 64 --processes 2
    python3 bench/bench_postgres.py --dsn "host=db.lab dbname=whc_bench user=whc"
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
import bench_server  # noqa: E402
from bench_server import _worker  # noqa: E402
from procstats import cpu_seconds, peak_rss_mb  # noqa: E402

from whc.serving.listener import free_port  # noqa: E402

TABLE = "whc_bench"




def start_server(folder: Path, port: int, dsn: str | None) -> subprocess.Popen:
    """bench_server.start_server, with the postgres sink when ``dsn`` is given."""
    folder.mkdir(exist_ok=True)
    if dsn is None:
        return bench_server.start_server(folder, port)
    return bench_server.start_server(folder, port, sink="postgres", postgres_dsn=dsn, postgres_table=TABLE)


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[tuple[str, int | None]]:
    """A temporary PostgreSQL cluster (the tests' fixture code); yields (dsn of a fresh database, postmaster pid)."""
    sys.path.insert(0, str(ROOT / "tests"))
    spec = importlib.util.spec_from_file_location("whc_pg_cluster", ROOT / "tests" / "postgres" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bindir = module.find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL server binaries not found: apt-get install postgresql, or pass --dsn")
    cluster = module.Cluster(bindir)
    try:
        cluster.init()
        cluster.start()
        with cluster.connect(autocommit=True) as conn:
            conn.execute("CREATE DATABASE whc_bench")
        pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
        yield cluster.dsn("whc_bench"), pid
    finally:
        cluster.destroy()


def database_cpu(postmaster: int | None) -> float:
    """CPU seconds used so far by the postmaster's live children (the backends); 0 if not ours to see."""
    if postmaster is None:
        return 0.0
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def count_rows(folders: list[Path], dsn: str | None) -> int:
    if dsn is None:
        with open(folders[0] / "whc_data.csv", "rb") as file:
            return sum(1 for _ in file) - 1
    import psycopg

    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]


def scenario(name: str, servers: int, clients: int, seconds: float, processes: int, dsn: str | None,
             postmaster: int | None) -> None:
    if dsn is not None:
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}, {TABLE}_rejects")
    with tempfile.TemporaryDirectory() as tmp:
        folders = [Path(tmp) / f"server{i}" for i in range(servers)]
        ports = [free_port() for _ in folders]
        procs = [start_server(folder, port, dsn) for folder, port in zip(folders, ports, strict=True)]
        try:
            before = [cpu_seconds(p.pid) for p in procs]
            db_before = database_cpu(postmaster)
            # Clients split evenly over load generator processes, each process over the servers.
            processes = max(processes, servers)
            per = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
            jobs = [("127.0.0.1", ports[i % servers], n, seconds, None, 2000, 500, i) for i, n in enumerate(per) if n]
            started = time.monotonic()
            with multiprocessing.Pool(len(jobs)) as pool:
                results = pool.map(_worker, jobs)
            elapsed = time.monotonic() - started
            cpu = sum(cpu_seconds(p.pid) - b for p, b in zip(procs, before, strict=True))
            db_cpu = database_cpu(postmaster) - db_before
            rss = max(peak_rss_mb(p.pid) for p in procs)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(30)
        rows = count_rows(folders, dsn)
    acked = sum(r["acked"] for r in results)
    latencies = sorted(x for r in results for x in r["latencies"])
    p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
    where = "CSV" if dsn is None else "table"
    db = f", database CPU {db_cpu / elapsed:.2f} cores" if postmaster is not None else ""
    print(f"{name}: {servers} server(s), {clients} clients flat out, {seconds:g} s: {rows} rows in {where} "
          f"({acked} acked), {rows / elapsed:,.0f} readings/s durably written, ack latency p50 {p50:.1f} ms "
          f"p99 {p99:.1f} ms, server CPU {cpu / elapsed:.2f} cores{db}, peak RSS {rss:.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--processes", type=int, default=1, help="load generator processes (at least one per server)")
    parser.add_argument("--dsn", help="use this database instead of a throwaway cluster (table whc_bench is dropped)")
    parser.add_argument("--skip-csv", action="store_true", help="leave out the CSV scenario")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}", flush=True)
    if not args.skip_csv:
        scenario("csv", 1, args.clients, args.seconds, args.processes, None, None)
    with contextlib.ExitStack() as stack:
        if args.dsn:
            dsn, postmaster = args.dsn, None
        else:
            dsn, postmaster = stack.enter_context(throwaway_cluster())
        scenario("postgres", 1, args.clients, args.seconds, args.processes, dsn, postmaster)
        scenario("postgres", 2, args.clients, args.seconds, args.processes, dsn, postmaster)


if __name__ == "__main__":
    main()

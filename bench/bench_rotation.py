#!/usr/bin/env python3
"""Benchmark CSV rotation: ingest rate with and without size rotation + gzip, and report.py over the result.

Starts launch_server.py in a temporary folder per setting, drives it flat out over loopback, then
counts every row across the active and closed files and times report.py over them. Numbers are
printed, not asserted.

    python3 bench/bench_rotation.py [--clients 16] [--seconds 5] [--max-bytes 4000000]
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import loadgen  # noqa: E402
from bench_server import start_server  # noqa: E402

from whc.storage.csvnames import closed_files  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _worker(args: tuple) -> dict:
    return loadgen.run(*args)


def count_rows(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as file:
        return sum(1 for _ in file) - 1


def run(name: str, clients: int, seconds: float, **settings: object) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        proc = start_server(folder, port, **settings)
        try:
            started = time.monotonic()
            with multiprocessing.Pool(1) as pool:
                results = pool.map(_worker, [("127.0.0.1", port, clients, seconds, None, 2000, 500, 0)])
            elapsed = time.monotonic() - started
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        csv_path = folder / "whc_data.csv"
        files = [*closed_files(csv_path), csv_path]
        rows = sum(count_rows(p) for p in files)
        acked = sum(r["acked"] for r in results)
        on_disk = sum(p.stat().st_size for p in files)
        began = time.monotonic()
        report = subprocess.run([sys.executable, str(ROOT / "report.py"), str(csv_path), "--no-plots", "--out",
                                 str(folder / "report")], capture_output=True, text=True)
        report_seconds = time.monotonic() - began
        status = "ok" if report.returncode == 0 else f"failed: {report.stderr.strip()[:200]}"
        print(f"{name}: {rows:,} rows in {len(files)} file(s) ({acked:,} acked), {rows / elapsed:,.0f} readings/s "
              f"durably written, {on_disk / 1e6:,.1f} MB on disk; report.py over them {report_seconds:.1f} s "
              f"({rows / report_seconds:,.0f} rows/s, {status})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--max-bytes", type=int, default=4_000_000)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}", flush=True)
    run("one file", args.clients, args.seconds)
    run(f"csv_max_bytes {args.max_bytes:,}", args.clients, args.seconds, csv_max_bytes=args.max_bytes)
    run(f"csv_max_bytes {args.max_bytes:,} + csv_compress", args.clients, args.seconds, csv_max_bytes=args.max_bytes,
        csv_compress=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark the server: readings/s durably written, ack latency, server CPU and peak RSS.

Starts launch_server.py in a temporary folder, drives it over loopback, counts the rows
that reached the CSV, and prints one line per scenario. Numbers are printed, not asserted.

    python3 bench/bench_server.py                  # both scenarios from the README
    python3 bench/bench_server.py --scenario throughput --clients 64 --seconds 10
    python3 bench/bench_server.py --scenario fleet --clients 1000 --rate 10 --seconds 60
    python3 bench/bench_server.py --scenario http --rounds 3  # HTTP off vs on and polled every second
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import loadgen  # noqa: E402
from procstats import cpu_seconds, peak_rss_mb  # noqa: E402

from whc.serving.listener import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def start_server(folder: Path, port: int, **settings: object) -> subprocess.Popen:
    """launch_server.py in ``folder`` with limits raised for the load; ``settings`` add to its config."""
    config = {"ip": "127.0.0.1", "port": port, "max_connections": 4096, "max_connections_per_ip": 4096,
              "log_level": "WARNING", "stats_interval": 3600, **settings}
    (folder / "server.json").write_text(json.dumps(config))
    proc = subprocess.Popen([sys.executable, str(ROOT / "launch_server.py"), "--config", str(folder / "server.json")],
                            cwd=folder)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}") from None
            time.sleep(0.05)
    raise SystemExit("server did not start")


def _worker(args: tuple) -> dict:
    return loadgen.run(*args)


def poll(port: int, stop: threading.Event, counts: list[int]) -> None:
    """Fetch the status page and /metrics every second until ``stop``, as a screen and Prometheus would."""
    while not stop.wait(1.0):
        for path in ("/", "/metrics"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                counts[0] += len(answer.read()) > 0


def scenario(name: str, clients: int, seconds: float, rate: float | None, processes: int,
             parser: str | None = None, http: bool = False) -> tuple[float, float]:
    """Run one load; print its line; return readings/s durably written and server CPU µs per reading."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        http_port = free_port() if http else None
        extra = {**({"parser": parser} if parser else {}), **({"http_port": http_port} if http else {})}
        proc = start_server(folder, port, **extra)
        stop, polls = threading.Event(), [0]
        poller = threading.Thread(target=poll, args=(http_port, stop, polls), daemon=True) if http else None
        if poller is not None:
            poller.start()
        try:
            cpu_before = cpu_seconds(proc.pid)
            per = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
            jobs = [("127.0.0.1", port, n, seconds, rate, 2000, 500, i) for i, n in enumerate(per) if n]
            started = time.monotonic()
            with multiprocessing.Pool(len(jobs)) as pool:
                results = pool.map(_worker, jobs)
            elapsed = time.monotonic() - started
            cpu = cpu_seconds(proc.pid) - cpu_before
            rss = peak_rss_mb(proc.pid)
        finally:
            stop.set()
            if poller is not None:
                poller.join(10)
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        with open(folder / "whc_data.csv", "rb") as file:
            rows = sum(1 for _ in file) - 1
        acked = sum(r["acked"] for r in results)
        latencies = sorted(x for r in results for x in r["latencies"])
        p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
        p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
        rate_text = "flat out" if rate is None else f"{rate:g}/s each"
        label = f"{name} ({parser} parser)" if parser else name
        print(f"{label}: {clients} clients, {rate_text}, {seconds:g} s: {rows} rows in CSV ({acked} acked), "
              f"{rows / elapsed:,.0f} readings/s durably written, ack latency p50 {p50:.1f} ms p99 {p99:.1f} ms, "
              f"server CPU {cpu:.1f} s ({cpu / elapsed:.2f} cores), peak RSS {rss:.0f} MB"
              + (f", {polls[0]} page and /metrics fetches" if http else ""), flush=True)
        return rows / elapsed, cpu / max(rows, 1) * 1e6


def http_comparison(clients: int, seconds: float, processes: int, rounds: int) -> None:
    """Ingest with HTTP off, then on and polled every second, alternating in one run; print the difference."""
    off, on = [], []
    for _ in range(rounds):
        off.append(scenario("http off", clients, seconds, None, processes))
        on.append(scenario("http on, polled 1/s", clients, seconds, None, processes, http=True))
    for what, index, unit in (("throughput", 0, "readings/s"), ("server CPU per reading", 1, "µs")):
        mean_off, mean_on = statistics.mean(r[index] for r in off), statistics.mean(r[index] for r in on)
        print(f"http {what}: off {mean_off:,.2f} {unit}, on and polled {mean_on:,.2f} {unit} "
              f"({(mean_on - mean_off) / mean_off * 100:+.1f} %, mean of {rounds} alternating rounds)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("throughput", "fleet", "http", "all"), default="all")
    parser.add_argument("--clients", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--rate", type=float, help="readings/s per client (fleet scenario)")
    parser.add_argument("--processes", type=int, default=1, help="load generator processes")
    parser.add_argument("--parser", help="server.json 'parser' (default: the server's own default)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating off/on rounds (http scenario)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}", flush=True)
    if args.scenario in ("throughput", "all"):
        scenario("throughput", args.clients or 64, args.seconds or 10, None, args.processes, args.parser)
    if args.scenario in ("fleet", "all"):
        scenario("fleet", args.clients or 1000, args.seconds or 60, args.rate or 10, args.processes, args.parser)
    if args.scenario == "http":
        http_comparison(args.clients or 64, args.seconds or 10, args.processes, args.rounds)


if __name__ == "__main__":
    main()

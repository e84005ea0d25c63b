#!/usr/bin/env python3
"""Benchmark many quiet connections: 10,000 clients at 1 reading/s each for 60 s, over loopback.

Starts launch_server.py in a temporary folder, opens the connections from several load-generator
processes (each client says hello with acks and sends on its own phase within the second), and
prints whether every reading was stored, the ack latency, and the server's CPU and memory.
Every wait is bounded. Numbers are printed, not asserted.

    python3 bench/bench_scale.py                               # 10,000 connections, 1/s, 60 s
    python3 bench/bench_scale.py --clients 2000 --seconds 20 --parser stdlib
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import selectors
import socket
import statistics
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_peer  # noqa: E402
import bench_server  # noqa: E402
from loadgen import receive  # noqa: E402
from procstats import cpu_seconds, peak_rss_mb  # noqa: E402

HELLO = b'{"hello": 1, "acks": true}\n'
CONNECT_SECONDS = 120.0  # longest the connections may take to open
DRAIN_SECONDS = 30.0  # longest to wait for the last acks after sending stops


@dataclass(eq=False)
class Paced:
    """One client: its socket, what it still has to send, and the send times of unacked lines."""

    sock: socket.socket
    unit: int
    out: bytes = b""
    sent: int = 0
    acked: int = 0
    inbuf: bytes = b""
    hello_done: bool = False
    chunks: deque = field(default_factory=deque)  # (line number, send time)


def current_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _raise_own_files(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def generate(port: int, first_unit: int, clients: int, seconds: float, rate: float, start_at: float) -> dict:
    """One load-generator process: ``clients`` connections, each sending ``rate`` readings/s from ``start_at``."""
    _raise_own_files(clients + 64)
    selector = selectors.DefaultSelector()
    streams: list[Paced] = []
    deadline = time.monotonic() + CONNECT_SECONDS
    for index in range(clients):
        if time.monotonic() > deadline:
            raise SystemExit(f"only {index} of {clients} connections opened in {CONNECT_SECONDS:g} s")
        sock = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_SECONDS)
        sock.sendall(HELLO)
        sock.setblocking(False)
        stream = Paced(sock, first_unit + index)
        streams.append(stream)
        selector.register(sock, selectors.EVENT_READ, stream)
    latencies: list[float] = []
    wall_to_mono = time.monotonic() - time.time()
    start = start_at + wall_to_mono
    while time.monotonic() < start:  # every process starts sending at the same moment
        _poll(selector, latencies, min(0.05, max(0.0, start - time.monotonic())))
    end = start + seconds
    due_total = 0  # sends that came due, over all streams: stream = j % clients, its seq = j // clients
    per_second = clients * rate
    backlog: set[Paced] = set()
    total = int(seconds * per_second)
    while True:
        now = time.monotonic()
        if due_total < total:
            target = min(int((now - start) * per_second), total)
            while due_total < target:
                stream = streams[due_total % clients]
                line = bench_peer.TEMPLATE % (0, 0, stream.unit % 1000, stream.unit, stream.sent)
                stream.out += line
                stream.sent += 1
                stream.chunks.append((stream.sent, now))
                due_total += 1
                _flush(stream)
                if stream.out:
                    backlog.add(stream)
        elif all(s.acked >= s.sent for s in streams) or now > end + DRAIN_SECONDS:
            break
        for stream in list(backlog):  # what a full socket buffer held back
            _flush(stream)
            if not stream.out:
                backlog.discard(stream)
        _poll(selector, latencies, 0.005)
    for stream in streams:
        stream.sock.close()
    return {"sent": sum(s.sent for s in streams), "acked": sum(s.acked for s in streams),
            "unflushed": sum(len(s.out) for s in streams), "latencies": latencies}


def _flush(stream: Paced) -> None:
    try:
        stream.out = stream.out[stream.sock.send(stream.out):]
    except BlockingIOError:
        pass


def _poll(selector: selectors.BaseSelector, latencies: list[float], timeout: float) -> None:
    for key, _ in selector.select(timeout):
        stream: Paced = key.data
        try:
            receive(stream, latencies)  # type: ignore[arg-type]  (the same fields as loadgen's Stream)
        except ConnectionError as exc:
            raise SystemExit(str(exc)) from None
        if stream.out:
            _flush(stream)


def _generate(args: tuple) -> dict:
    return generate(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1.0, help="readings/s per client")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--processes", type=int, default=2, help="load-generator processes")
    parser.add_argument("--parser", help="server.json 'parser' (default: the server's own default)")
    args = parser.parse_args()
    print(f"machine: {bench_peer.machine()}", flush=True)
    settings = {"max_connections": args.clients + 100, "max_connections_per_ip": args.clients + 100,
                **({"parser": args.parser} if args.parser else {})}
    with tempfile.TemporaryDirectory(prefix="whc-scale-") as tmp:
        folder = Path(tmp)
        port = bench_peer.free_port()
        proc = bench_server.start_server(folder, port, **settings)
        try:
            per = [args.clients // args.processes + (1 if i < args.clients % args.processes else 0)
                   for i in range(args.processes)]
            first = [sum(per[:i]) for i in range(args.processes)]
            start_at = time.time() + max(10.0, args.clients / 500)  # time to open the connections
            jobs = [(port, f, n, args.seconds, args.rate, start_at) for f, n in zip(first, per, strict=True) if n]
            with multiprocessing.Pool(len(jobs)) as pool:
                pending = pool.map_async(_generate, jobs)
                cpu_before = None
                while not pending.ready():
                    if cpu_before is None and time.time() >= start_at:
                        cpu_before = cpu_seconds(proc.pid), time.monotonic()
                    pending.wait(0.2)
                results = pending.get()
            cpu_used = cpu_seconds(proc.pid) - cpu_before[0] if cpu_before else float("nan")
            cpu_span = time.monotonic() - cpu_before[1] if cpu_before else float("nan")
            rss_now, rss_peak = current_rss_mb(proc.pid), peak_rss_mb(proc.pid)
        finally:
            bench_peer.stop(proc)
        rows = bench_peer.LineCounter(folder / "whc_data.csv", skip=1).count()
    sent = sum(r["sent"] for r in results)
    acked = sum(r["acked"] for r in results)
    latencies = sorted(x for r in results for x in r["latencies"])
    p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
    worst = latencies[-1] * 1000 if latencies else float("nan")
    print(f"scale: {args.clients:,} connections at {args.rate:g} reading/s each for {args.seconds:g} s"
          f"{f' (parser {args.parser})' if args.parser else ''}: {sent:,} sent, {acked:,} acked, {rows:,} rows in CSV; "
          f"all stored: {'yes' if rows == sent and acked == sent else 'NO'}; ack latency p50 {p50:.1f} ms, "
          f"p99 {p99:.1f} ms, max {worst:.0f} ms; server RSS {rss_now:.0f} MB at the end, peak {rss_peak:.0f} MB; "
          f"server CPU {cpu_used / cpu_span:.2f} cores", flush=True)


if __name__ == "__main__":
    main()

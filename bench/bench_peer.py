#!/usr/bin/env python3
"""Benchmark the server against a peer in the same run: rsyslog (imtcp -> omfile) with the same load.

Starts a private rsyslogd (Debian's rsyslog package: its own config, pid file, work folder and a free
port on 127.0.0.1; never the system service) and launch_server.py, sends each the same readings
(300,000 lines of about 300 bytes by default) over 1, 4 and 64 connections, waits until every line is
in the peer's output file or the server's CSV, checks that every line is there exactly as sent (the
peer's bytes; our rows, each exactly the reference parser's row of its line, receive time aside), and
prints both rates and their ratio. Absolute figures do not carry from one machine to the next; the
ratio does. Numbers are printed, not asserted.

    python3 bench/bench_peer.py                               # 300,000 readings; 1, 4, 64 connections
    python3 bench/bench_peer.py --readings 100000 --connections 64 --repeat 3
    python3 bench/bench_peer.py --parser stdlib --parser msgspec   # each parser against the same peer
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_server  # noqa: E402
from procstats import cpu_seconds  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from whc.columns import NAMES  # noqa: E402
from whc.parsers.stdlib import reference  # noqa: E402
from whc.storage.sinks.csv import format_row  # noqa: E402

RECV_TIME_COLUMN = NAMES.index("recv_time")

HELLO = b'{"hello": 1, "acks": true}\n'
# About 300 bytes: the default sensor groups plus the magnetometer, as a sender writes them.
TEMPLATE = (
    b'{"time":"2026-11-24T12:00:%02d.%06dZ","sh_id":"rpi%03d","ori_r":12.345678,"ori_p":1.2345678,'
    b'"ori_y":359.12345,"gyr_x":0.00123,"gyr_y":-0.0123,"gyr_z":0.0002,"acc_x":0.0123,"acc_y":-0.998,'
    b'"acc_z":0.0345,"mag_x":-21.375,"mag_y":4.8125,"mag_z":-40.0625,"heading":187.25,"session":"peer%d","seq":%d}\n'
)
WAIT_SECONDS = 600.0  # longest a run may take before it counts as failed
RSYSLOG_CONF = """\
# A private rsyslogd for bench/bench_peer.py: TCP in, one file out, each message as received.
global(workDirectory="{work}" maxMessageSize="8k")
module(load="imtcp")
template(name="asReceived" type="string" string="%rawmsg%\\n")
ruleset(name="bench") {{
  action(type="omfile" file="{out}" template="asReceived")
}}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="bench")
"""


def machine() -> str:
    """CPU model, core count, Python and the load average, to name where the figures come from."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}; load average at start {load}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def payloads(readings: int, connections: int) -> list[bytes]:
    """The lines each connection sends: its own unit and session, seq from 0."""
    out = []
    for conn in range(connections):
        count = readings // connections + (1 if conn < readings % connections else 0)
        out.append(b"".join(TEMPLATE % (seq // 1_000_000 % 60, seq % 1_000_000, conn, conn, seq)
                            for seq in range(count)))
    return out


def wait_listening(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on port {port}")


def start_rsyslog(folder: Path, port: int) -> tuple[subprocess.Popen, Path]:
    """rsyslogd in the foreground with a config, pid file and work folder in ``folder``; returns it and its file."""
    rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    if not Path(rsyslogd).exists():
        raise SystemExit("rsyslogd not found: install Debian's rsyslog (sudo apt install rsyslog)")
    work = folder / "work"
    work.mkdir()
    out = folder / "peer.log"
    conf = folder / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=work, out=out, port=port))
    proc = subprocess.Popen([rsyslogd, "-n", "-f", str(conf), "-i", str(folder / "rsyslogd.pid")],
                            stdout=subprocess.DEVNULL, stderr=open(folder / "rsyslogd.stderr", "w"))
    wait_listening(port, proc, "rsyslogd")
    return proc, out


def stop(proc: subprocess.Popen) -> None:
    """Stop a process this script started, by its PID."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class LineCounter:
    """Counts the lines appended to a file, reading only what is new."""

    def __init__(self, path: Path, skip: int = 0) -> None:
        self.path = path
        self.offset = 0
        self.lines = -skip

    def count(self) -> int:
        try:
            with open(self.path, "rb") as file:
                file.seek(self.offset)
                while chunk := file.read(1 << 22):
                    self.lines += chunk.count(b"\n")
                    self.offset += len(chunk)
        except FileNotFoundError:
            pass
        return self.lines


def drive(port: int, data: list[bytes], hello: bytes | None, done: Callable[[], bool]) -> float:
    """Send each payload on its own connection at once; return seconds until ``done()`` holds."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=WAIT_SECONDS) for _ in data]
    start = threading.Barrier(len(socks) + 1)
    errors: list[BaseException] = []

    def client(sock: socket.socket, payload: bytes) -> None:
        try:
            start.wait()
            if hello is not None:
                sock.sendall(hello)
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):  # acks (ours) or nothing (the peer), until the other side closes
                pass
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)
        finally:
            sock.close()

    threads = [threading.Thread(target=client, args=pair, daemon=True) for pair in zip(socks, data, strict=True)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.monotonic()
    deadline = began + WAIT_SECONDS
    while not done():
        if errors:
            raise SystemExit(f"a client failed: {errors[0]!r}")
        if time.monotonic() > deadline:
            raise SystemExit(f"not all lines arrived within {WAIT_SECONDS:g} s")
        time.sleep(0.005)
    elapsed = time.monotonic() - began
    for thread in threads:
        thread.join(WAIT_SECONDS)
    return elapsed


def run_peer(data: list[bytes], total: int) -> tuple[float, float]:
    """The peer's rate (lines/s) and CPU µs per line, after checking its file holds every line exactly."""
    with tempfile.TemporaryDirectory(prefix="whc-peer-") as tmp:
        folder = Path(tmp)
        port = free_port()
        proc, out = start_rsyslog(folder, port)
        try:
            expected_bytes = sum(map(len, data))
            counter = LineCounter(out)
            cpu_before = cpu_seconds(proc.pid)
            elapsed = drive(port, data, None, lambda: counter.count() >= total)
            cpu = cpu_seconds(proc.pid) - cpu_before
        finally:
            stop(proc)
        size = out.stat().st_size
        if counter.count() != total or size != expected_bytes:
            raise SystemExit(f"rsyslog wrote {counter.lines} lines ({size} bytes), expected {total} "
                             f"({expected_bytes} bytes)")
        return total / elapsed, cpu / total * 1e6


def expected_rows(data: list[bytes]) -> Counter[str]:
    """The CSV rows the reference parser makes of every line sent, receive time left blank."""
    return Counter(without_recv_time(format_row(reference(line, "", "127.0.0.1")))
                   for payload in data for line in payload.splitlines())


def without_recv_time(row: str) -> str:
    cells = row.split(",")
    cells[RECV_TIME_COLUMN] = ""
    return ",".join(cells)


def check_rows(csv_path: Path, expected: Counter[str]) -> None:
    """Every row is exactly the reference's row of a line sent, each line once (exits if not)."""
    with csv_path.open(newline="") as file:
        next(file)  # the header
        got = Counter(map(without_recv_time, file))
    if got != expected:
        raise SystemExit(f"the CSV differs from the reference's rows: {sum((got - expected).values())} rows "
                         f"unexpected, {sum((expected - got).values())} missing")


def run_ours(data: list[bytes], total: int, parser: str | None,
             expected: Counter[str]) -> tuple[float, float, float]:
    """Our rate (readings/s durably written to the CSV), server CPU cores over the run and CPU µs per reading."""
    with tempfile.TemporaryDirectory(prefix="whc-ours-") as tmp:
        folder = Path(tmp)
        port = free_port()
        settings = {} if parser is None else {"parser": parser}
        proc = bench_server.start_server(folder, port, **settings)
        try:
            counter = LineCounter(folder / "whc_data.csv", skip=1)  # the header
            cpu_before = cpu_seconds(proc.pid)
            elapsed = drive(port, data, HELLO, lambda: counter.count() >= total)
            cpu = cpu_seconds(proc.pid) - cpu_before
        finally:
            stop(proc)
        if counter.count() != total:
            raise SystemExit(f"the server stored {counter.lines} rows, expected {total}")
        check_rows(folder / "whc_data.csv", expected)
        return total / elapsed, cpu / elapsed, cpu / total * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=300_000)
    parser.add_argument("--connections", type=int, action="append", help="repeatable; default 1, 4 and 64")
    parser.add_argument("--parser", action="append", help="server.json 'parser' for our server; repeatable "
                        "(default: the server's own default)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row (the median ratio is printed too)")
    args = parser.parse_args()
    parsers = args.parser or [None]
    print(f"machine: {machine()}", flush=True)
    size = len(payloads(1, 1)[0])
    print(f"load: {args.readings:,} readings of {size} bytes over loopback; peer: rsyslogd "
          f"(imtcp -> omfile, raw lines, no parsing, no fsync); ours: parse, validate, dedup, group commit, fsync",
          flush=True)
    summary = []
    for connections in args.connections or [1, 4, 64]:
        data = payloads(args.readings, connections)
        expected = expected_rows(data)
        ratios: dict[str | None, list[float]] = {name: [] for name in parsers}
        cpu_ratios: dict[str | None, list[float]] = {name: [] for name in parsers}
        for _ in range(args.repeat):
            peer, peer_us = run_peer(data, args.readings)  # next to ours every time: the machine's load varies
            for name in parsers:
                ours, cores, ours_us = run_ours(data, args.readings, name, expected)
                ratios[name].append(ours / peer)
                cpu_ratios[name].append(peer_us / ours_us)
                print(f"{connections:3d} connections: {label(name)} {ours:,.0f}/s at {cores:.2f} server cores "
                      f"({ours_us:.1f} µs CPU per reading), rsyslog {peer:,.0f}/s ({peer_us:.2f} µs CPU per line), "
                      f"ratio {ours / peer:.3f}", flush=True)
        summary += [f"{connections:3d} connections, {label(name)}: rate ratio median {statistics.median(r):.3f} "
                    f"(range {min(r):.3f}-{max(r):.3f}, {len(r)} runs); CPU-cost ratio (rsyslog's CPU per line / "
                    f"ours) median {statistics.median(cpu_ratios[name]):.3f}" for name, r in ratios.items()]
    print("summary (ours / rsyslog):", *summary, sep="\n", flush=True)


def label(parser: str | None) -> str:
    return f"ours ({parser} parser)" if parser else "ours"


if __name__ == "__main__":
    main()

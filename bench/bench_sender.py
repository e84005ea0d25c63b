#!/usr/bin/env python3
"""Benchmark the sender on the Sense HAT emulator: sampling rate, CPU and memory, backlog drain.

Numbers are printed, not asserted; each measurement prints one line. Everything runs on
loopback in a temporary folder, with launch_server.py / launch_sender.py as real processes.

  sampling  Sampler.sample() in a loop at interval 0 (default sensor groups: orientation,
            gyroscope, accelerometer) for --seconds: readings/s. For comparison, the original
            approach, get_orientation_degrees(), get_gyroscope_raw(), get_accelerometer_raw()
            one after another on the same SenseHat object: readings/s.
  cpu       The real sender (--emulator, interval 0) against a real server for --sender-seconds.
            Its CPU (utime+stime from /proc/<pid>/stat) over a steady-state window between two of
            its stats log lines, minus the emulator's simulation threads (which run inside the
            sender when it drives the emulator; their CPU rate is measured beforehand in this
            process on an idle emulator back end, --idle-seconds) and minus the sensor reads
            (thread CPU per backend.read(), timed in this process, --read-seconds), divided by the
            readings of the window. Also its peak RSS (VmHWM), read just before SIGTERM.
  backlog   A spool holding --backlog readings (default 60,000: 10 minutes at 100 Hz) made with
            Buffer.add() and Buffer.close(); then a real server and a real sender using that spool
            (--emulator, interval 0.01, so live readings keep coming too): the time until the CSV
            holds every backlog reading, and readings/s.

    python3 bench/bench_sender.py                       # all three, about a minute
    python3 bench/bench_sender.py --measure sampling --seconds 30
    python3 bench/bench_sender.py --measure backlog --backlog 360000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from procstats import cpu_seconds, peak_rss_mb  # noqa: E402

from whc.buffering.buffer import Buffer  # noqa: E402
from whc.columns import DEFAULT_SENSOR_GROUPS  # noqa: E402
from whc.protocol import format_time  # noqa: E402
from whc.sampling.backends import SensorBackend, _emu_sim, open_backend  # noqa: E402
from whc.sampling.sampler import Sampler  # noqa: E402
from whc.serving.listener import free_port  # noqa: E402

UNIT = "bench"
STATS_RE = re.compile(rb"stats: readings/s=[0-9.]+ read=(\d+) ")
STOPPED_RE = re.compile(rb"stopped; (\d+) readings this run")
DRIVING = b"driving the sense_emu simulation"


# --- processes ------------------------------------------------------------------------------


def write_config(folder: Path, port: int, **sender: Any) -> Path:
    """One server.json for both sides: the server's keys plus the sender's (unit, backend, interval...)."""
    config = {"ip": "127.0.0.1", "port": port, "log_level": "INFO", "unit": UNIT, "backend": "emulator", **sender}
    path = folder / "server.json"
    path.write_text(json.dumps(config))
    return path


def start_server(folder: Path, config: Path, port: int) -> subprocess.Popen:
    with open(folder / "server.stderr", "wb") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "launch_server.py"), "--config", str(config)],
                                cwd=folder, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: {tail(folder / 'server.stderr')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise SystemExit("server did not start within 15 s")


def start_sender(folder: Path, config: Path) -> subprocess.Popen:
    with open(folder / "sender.log", "wb") as log:
        return subprocess.Popen([sys.executable, str(ROOT / "launch_sender.py"), "--config", str(config),
                                 "--emulator"], cwd=folder, stdout=subprocess.DEVNULL, stderr=log)


def stop(proc: subprocess.Popen | None, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def check_alive(proc: subprocess.Popen, what: str, log: Path) -> None:
    if proc.poll() is not None:
        raise SystemExit(f"{what} exited early with {proc.returncode}: {tail(log)}")


class LogWatch:
    """Follows the sender's log file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.text = b""

    def poll(self) -> list[bytes]:
        """New complete lines."""
        with open(self.path, "rb") as file:
            file.seek(self.offset)
            data = file.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        self.text += data[:end]
        return data[:end].splitlines()

    def next_stats(self, proc: subprocess.Popen, deadline: float) -> int:
        """Wait for the next stats line written from now on and return its read= count (checks every
        2 ms, so the caller's CPU sample right after it is within a few ms of the count)."""
        self.poll()  # older lines are stale
        while time.monotonic() < deadline:
            check_alive(proc, "sender", self.path)
            for line in self.poll():
                match = STATS_RE.search(line)
                if match:
                    return int(match.group(1))
            time.sleep(0.002)
        raise SystemExit(f"no stats line from the sender in time: {tail(self.path)}")


# --- 1. sampling rate -----------------------------------------------------------------------
def open_emulator() -> SensorBackend:
    backend = open_backend("emulator", DEFAULT_SENSOR_GROUPS)
    backend.read()  # first read: the emulated IMU's set-up
    return backend


def loop_rate(call: Callable[[], object], seconds: float) -> tuple[int, float]:
    count = 0
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        call()
        count += 1
    return count, time.monotonic() - start


def measure_sampling(seconds: float) -> None:
    backend = open_emulator()
    try:
        driving = _emu_sim.driving()
        sampler = Sampler(backend, UNIT, 0, lambda _reading: None)
        loop_rate(sampler.sample, 0.5)
        failures_before = backend.imu_failures
        ours, ours_time = loop_rate(sampler.sample, seconds)
        failures = backend.imu_failures - failures_before
        import sense_emu  # a SenseHat of its own: the back end's IMU reader thread would take its samples

        sense = sense_emu.SenseHat()

        def original() -> None:
            sense.get_orientation_degrees()
            sense.get_gyroscope_raw()
            sense.get_accelerometer_raw()

        theirs, theirs_time = loop_rate(original, seconds)
    finally:
        backend.close()
    who = "this process" if driving else "another process"
    print(f"sampling: interval 0, emulator (simulation driven by {who}), groups {','.join(DEFAULT_SENSOR_GROUPS)}, "
          f"{seconds:g} s each: Sampler.sample() {ours / ours_time:.1f} readings/s ({ours} readings, "
          f"{failures} with failed IMU reads); original get_orientation_degrees()+get_gyroscope_raw()+"
          f"get_accelerometer_raw() {theirs / theirs_time:.1f} readings/s ({theirs} readings)", flush=True)


# --- 2. CPU and memory of the sender --------------------------------------------------------
def in_process_costs(idle_seconds: float, read_seconds: float) -> tuple[tuple[float, float], float, bool]:
    """Calibration in this process: (CPU s per wall s of an idle emulator back end, measured over two halves
    of ``idle_seconds``; CPU s of this thread per backend.read(); did this process drive the emulator?)."""
    backend = open_emulator()
    try:
        driving = _emu_sim.driving()
        time.sleep(0.5)
        rates = []
        for _ in range(2):  # all threads, while this one sleeps: the emulator's simulation
            cpu0, wall0 = time.process_time(), time.monotonic()
            time.sleep(idle_seconds / 2)
            rates.append((time.process_time() - cpu0) / (time.monotonic() - wall0))
        cpu0 = time.thread_time()  # this thread only: the read itself, not the simulation threads
        reads, _wall = loop_rate(backend.read, read_seconds)
        read_cpu = (time.thread_time() - cpu0) / reads
    finally:
        backend.close()
    return (rates[0], rates[1]), read_cpu, driving


def measure_cpu(seconds: float, idle_seconds: float, read_seconds: float) -> None:
    idle_rates, read_cpu, we_drove = in_process_costs(idle_seconds, read_seconds)
    idle_rate = sum(idle_rates) / 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        config = write_config(folder, port, interval=0, stats_interval=1)
        server = sender = None
        try:
            server = start_server(folder, config, port)
            sender = start_sender(folder, config)
            watch = LogWatch(folder / "sender.log")
            warm_until = time.monotonic() + 3
            for _ in range(60):  # skip start-up: the first stats line at least 3 s after launch
                read0 = watch.next_stats(sender, warm_until + 30)
                cpu0, t0 = cpu_seconds(sender.pid), time.monotonic()
                if t0 >= warm_until:
                    break
            else:
                raise SystemExit(f"the sender wrote stats lines too often: {tail(folder / 'sender.log')}")
            time.sleep(max(0.0, seconds - 1.5))
            read1 = watch.next_stats(sender, time.monotonic() + 30)
            cpu1, t1 = cpu_seconds(sender.pid), time.monotonic()
            rss = peak_rss_mb(sender.pid)
            stop(sender)
            watch.poll()
            stopped = STOPPED_RE.search(watch.text)
            run_total = int(stopped.group(1)) if stopped else None
            sender_drove = DRIVING in watch.text
        finally:
            stop(sender)
            stop(server)
        with open(folder / "whc_data.csv", "rb") as file:
            rows = sum(1 for _ in file) - 1
    readings, wall, cpu = read1 - read0, t1 - t0, cpu1 - cpu0
    sim = idle_rate * wall if sender_drove else 0.0
    reads = read_cpu * readings
    rest = cpu - sim - reads
    # what the figure can be off by: the two idle halves' spread over the window, plus one clock tick per sample
    error = (abs(idle_rates[0] - idle_rates[1]) / 2 * wall if sender_drove else 0.0) + 2 / os.sysconf("SC_CLK_TCK")
    if sender_drove:
        sim_text = (f"emulator simulation threads {sim:.2f} s (they run in the sender, which drove the emulator; "
                    f"idle-emulator CPU {idle_rate:.3f} cores, measured in this process over {idle_seconds:g} s "
                    f"[halves {idle_rates[0]:.3f}/{idle_rates[1]:.3f}], x {wall:.1f} s)")
    else:
        sim_text = "emulator simulation 0 s (another process drove the emulator, not the sender)"
    if not we_drove:
        sim_text += " [warning: another process drove the emulator during the in-process calibration]"
    print(f"cpu: sender at interval 0 on the emulator, steady-state window {wall:.1f} s between two of its stats "
          f"lines, {readings} readings ({readings / wall:.1f}/s): sender process CPU {cpu:.2f} s (utime+stime) = "
          f"{sim_text} + sensor reads {reads:.2f} s ({read_cpu * 1e6:.0f} us CPU per backend.read(), thread CPU "
          f"measured in this process over {read_seconds:g} s, x {readings}) + the rest {rest:.2f} s => "
          f"{rest / readings * 1e6:.0f} +- {error / readings * 1e6:.0f} us CPU per reading excluding the sensor read "
          f"and the emulator simulation (+- from the idle halves' spread and the {1000 / os.sysconf('SC_CLK_TCK'):g} "
          f"ms clock tick; {cpu / readings * 1e6:.0f} us all included, {cpu / wall * 100:.1f}% of a core); peak RSS "
          f"{rss:.1f} MB (VmHWM before SIGTERM); {run_total} readings this run (sender's last log line), "
          f"{rows} rows in the CSV", flush=True)


# --- 3. backlog drain -----------------------------------------------------------------------
def build_backlog(spool: Path, count: int, rate: float) -> tuple[str, int]:
    """Spool ``count`` realistic readings taken at ``rate`` Hz ending now; (session, spool bytes)."""
    rng = random.Random(1)
    buffer = Buffer(spool, 512 * 2**20, 20000, 1.0)
    start = datetime.now(UTC) - timedelta(seconds=count / rate)
    for i in range(count):
        values = (rng.uniform(0, 360), rng.uniform(0, 360), rng.uniform(0, 360),
                  rng.gauss(0, 0.01), rng.gauss(0, 0.01), rng.gauss(0, 0.01),
                  rng.gauss(0, 0.02), rng.gauss(0, 0.02), rng.gauss(1, 0.02))
        reading: dict[str, Any] = {"time": format_time(start + timedelta(seconds=i / rate)), "sh_id": UNIT}
        for name, value in zip(("ori_r", "ori_p", "ori_y", "gyr_x", "gyr_y", "gyr_z", "acc_x", "acc_y", "acc_z"),
                               values, strict=True):
            reading[name] = float(f"{value:.7g}")
        buffer.add(reading)
    buffer.close()
    return buffer.session, buffer.spool.size


class CsvFollower:
    """Counts the CSV's backlog rows (the spooled session, seq below the backlog size) as they arrive."""

    def __init__(self, path: Path, session: str, backlog: int) -> None:
        self.path = path
        self.session = session
        self.backlog = backlog
        self.offset = 0
        self.columns: dict[str, int] | None = None
        self.backlog_rows = 0
        self.live_rows = 0

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as file:
                file.seek(self.offset)
                data = file.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        self.offset += end
        for row in csv.reader(data[:end].decode().splitlines()):
            if self.columns is None:
                self.columns = {name: i for i, name in enumerate(row)}
                continue
            if row[self.columns["session"]] == self.session and int(row[self.columns["seq"]]) < self.backlog:
                self.backlog_rows += 1
            else:
                self.live_rows += 1


def measure_backlog(count: int, rate: float, interval: float, timeout: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        built = time.monotonic()
        session, spool_bytes = build_backlog(folder / "spool", count, rate)
        built = time.monotonic() - built
        port = free_port()
        config = write_config(folder, port, interval=interval, spool_dir="spool")
        follower = CsvFollower(folder / "whc_data.csv", session, count)
        server = sender = None
        try:
            server = start_server(folder, config, port)
            launched = time.monotonic()
            sender = start_sender(folder, config)
            deadline = launched + timeout
            first = done = None
            while time.monotonic() < deadline:
                follower.poll()
                now = time.monotonic()
                if first is None and follower.backlog_rows:
                    first = now
                if follower.backlog_rows >= count:
                    done = now
                    break
                check_alive(sender, "sender", folder / "sender.log")
                time.sleep(0.01)
        finally:
            stop(sender)
            stop(server)
    if done is None or first is None:
        raise SystemExit(f"backlog: only {follower.backlog_rows} of {count} backlog rows in the CSV "
                         f"after {timeout:g} s")
    total, since_first = done - launched, done - first
    print(f"backlog: {count:,} spooled readings ({count / rate / 60:g} min at {rate:g} Hz, "
          f"{spool_bytes / 2**20:.1f} MB of spool, built in {built:.1f} s) all in the CSV {total:.2f} s after "
          f"launching the sender ({count / total:,.0f} readings/s including its start-up), "
          f"{since_first:.2f} s after the first backlog row arrived ({count / since_first:,.0f} readings/s); "
          f"meanwhile {follower.live_rows} live rows (interval {interval:g} s) reached the CSV too", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure", choices=("sampling", "cpu", "backlog", "all"), default="all")
    parser.add_argument("--seconds", type=float, default=10, help="sampling: seconds per approach (default 10)")
    parser.add_argument("--sender-seconds", type=float, default=20,
                        help="cpu: seconds the sender runs against the server (default 20)")
    parser.add_argument("--idle-seconds", type=float, default=10,
                        help="cpu: seconds an idle emulator back end is watched in-process (default 10)")
    parser.add_argument("--read-seconds", type=float, default=5,
                        help="cpu: seconds of backend.read() calls timed in-process (default 5)")
    parser.add_argument("--backlog", type=int, default=60000, help="backlog: readings in the spool (default 60000)")
    parser.add_argument("--backlog-rate", type=float, default=100, help="backlog: Hz the readings were taken at")
    parser.add_argument("--interval", type=float, default=0.01, help="backlog: the sender's live interval (0.01)")
    parser.add_argument("--timeout", type=float, default=120, help="backlog: give up after this many seconds")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}", flush=True)
    if args.measure in ("sampling", "all"):
        measure_sampling(args.seconds)
    if args.measure in ("cpu", "all"):
        measure_cpu(args.sender_seconds, args.idle_seconds, args.read_seconds)
    if args.measure in ("backlog", "all"):
        measure_backlog(args.backlog, args.backlog_rate, args.interval, args.timeout)


if __name__ == "__main__":
    main()

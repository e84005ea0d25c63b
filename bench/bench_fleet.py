#!/usr/bin/env python3
"""Benchmark the fleet's state: cost per committed batch on the loop, and snapshot/render cost on the HTTP thread.

    python3 bench/bench_fleet.py --units 1000

Numbers are printed, not asserted. CPU time (process_time), best of 5 repetitions.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from whc.monitoring import metrics, page  # noqa: E402
from whc.monitoring.units import Fleet  # noqa: E402
from whc.storage import Batch, UnitSpan  # noqa: E402


class _Conn:
    unit = None
    closed = False


def batches(units: int, count: int) -> list[tuple[Batch, _Conn]]:
    """One-reading batches (the worst case: a sender at a low rate), round robin over ``units``."""
    conns = [_Conn() for _ in range(units)]
    out = []
    for i in range(count):
        reading = {"time": "2026-11-24T12:00:00.000000Z", "recv_time": "2026-11-24T12:00:00.020000Z",
                   "sh_id": f"rpi{i % units:04d}", "session": "s", "seq": i // units}
        batch = Batch(None, 1, 100, rows=[None])
        batch.spans.append(UnitSpan(reading["sh_id"], 0, reading, reading))
        out.append((batch, conns[i % units]))
    return out


def best(run, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=100000)
    args = parser.parse_args()
    fleet = Fleet(30)
    work = batches(args.units, args.batches)

    def commit_all() -> None:
        now = time.monotonic()
        for batch, conn in work:
            fleet.committed(batch, conn, "127.0.0.1", now)

    per_batch = best(commit_all) / len(work) * 1e6
    print(f"fleet.committed: {per_batch:.2f} µs per one-reading batch ({args.units} units)")
    tick = best(lambda: fleet.tick(time.monotonic())) * 1e3
    print(f"fleet.tick (once a second on the loop): {tick:.2f} ms for {args.units} units")
    for _ in range(120):  # a full 10-minute rate history
        for unit in fleet.units.values():
            unit.totals.append(unit.stored)
    snap = fleet.snapshot(time.monotonic(), {"readings_written_total": 0, "readings_rejected_total": 0,
                                             "readings_duplicate_total": 0, "connections": args.units,
                                             "pending_bytes": 0, "writes_failing": False,
                                             "writes_failing_reason": None, "connections_refused_total": 0,
                                             "started_timestamp": 0.0, "sink": "csv"})
    taking = best(lambda: fleet.snapshot(time.monotonic(), snap["server"])) * 1e3
    rendering = best(lambda: page.render(snap)) * 1e3
    exposing = best(lambda: metrics.render(snap)) * 1e3
    page_kib, metrics_kib = len(page.render(snap)) // 1024, len(metrics.render(snap)) // 1024
    print(f"HTTP thread, at most once a second while polled: snapshot {taking:.1f} ms, page {rendering:.1f} ms "
          f"({page_kib} KiB), /metrics {exposing:.1f} ms ({metrics_kib} KiB)")


if __name__ == "__main__":
    main()

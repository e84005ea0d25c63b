#!/usr/bin/env python3
"""Benchmark the connection handler in process: microseconds per reading for each way of framing.

Feeds the same readings to ``Handler.feed`` as the server does (received chunks of 64 KiB) and
prints the best of several rounds, so the framing cost is seen without the network or the disk.
Numbers are printed, not asserted.

    python3 bench/bench_framing.py
    python3 bench/bench_framing.py --readings 50000 --rounds 7
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from whc.serving.handler import Handler  # noqa: E402
from whc.storage.sinks.csv import CsvSink  # noqa: E402

CHUNK = 64 * 1024


def stream(count: int, separator: bytes) -> bytes:
    """``count`` readings like the sender's, each followed by ``separator``."""
    lines = []
    for seq in range(count):
        reading = {"time": "2026-11-24T12:00:00.123456Z", "sh_id": "rpi03", "session": "k3j9x2", "seq": seq,
                   "ori_r": 1.52, "ori_p": 358.7, "ori_y": 12.0, "gyr_x": 0.001, "gyr_y": -0.003, "gyr_z": 0.0,
                   "acc_x": 0.012, "acc_y": -0.004, "acc_z": 0.998}
        lines.append(json.dumps(reading).encode() + separator)
    return b"".join(lines)


def per_reading_us(data: bytes, count: int, rounds: int) -> float:
    best = float("inf")
    chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]
    for _ in range(rounds):
        handler = Handler("127.0.0.1", 65536, CsvSink.encode)
        rows = 0
        started = time.perf_counter()
        for chunk in chunks:
            batch = handler.feed(chunk, "2026-11-24T12:00:00.200000Z")
            if batch is not None:
                rows += len(batch.rows)
        best = min(best, time.perf_counter() - started)
        assert rows == count and handler.rejected == 0, (rows, handler.rejected)
    return best / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {args.readings} readings, best of {args.rounds}", flush=True)
    for name, separator in (("newline", b"\n"), ("back to back", b""), ("space between", b" ")):
        data = stream(args.readings, separator)
        print(f"{name:>14}: {per_reading_us(data, args.readings, args.rounds):.2f} us per reading", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""In-process cost of the hot path per reading: decode, validate and encode the CSV row, per parser.

Uses bench_peer.py's readings (about 300 bytes). Prints CPU µs per reading (best of a few rounds) for
the reference (protocol.py as it is), then for the stdlib parser and, if installed, msgspec: line by
line (``parse``), a received chunk of 64 KiB at a time (``parse_many``, as the server takes plain
lines that are not a run), and a 64 KiB block of one session taken as a run (``parse_run``, CSV lines
made at once: what the server does with a sender's stream), also with one reading in 20 holding a
small value that Python writes with an exponent. Printed, not asserted.

    python3 bench/bench_parse.py [--readings 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import bench_peer  # noqa: E402

from whc.parsers import PARSERS, load  # noqa: E402
from whc.parsers.stdlib import reference  # noqa: E402
from whc.storage.sinks.csv import CsvSink  # noqa: E402

RECV_TIME = "2026-11-24T12:00:00.000000Z"


def cost(parse, lines: list[bytes], rounds: int = 5) -> float:
    """Best CPU µs per line of ``CsvSink.encode(parse(line))``."""
    encode = CsvSink.encode
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for line in lines:
            encode(parse(line, RECV_TIME, "127.0.0.1"))
        best = min(best, (time.process_time() - started) / len(lines) * 1e6)
    return best


def chunk_cost(parse_many, chunks: list[list[bytes]], rounds: int = 5) -> float:
    """Best CPU µs per line of encoding every reading of ``parse_many(chunk)``."""
    encode = CsvSink.encode
    lines = sum(map(len, chunks))
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for chunk in chunks:
            readings = parse_many(chunk, RECV_TIME, "127.0.0.1")
            if len(readings) != len(chunk):
                raise SystemExit("a chunk of plain lines was not taken at once")
            list(map(encode, readings))
        best = min(best, (time.process_time() - started) / lines * 1e6)
    return best


def run_cost(parse_run, blocks: list[bytes], rounds: int = 5) -> float:
    """Best CPU µs per line of ``parse_run(block)``, which gives the CSV lines themselves."""
    lines = sum(block.count(b"\n") for block in blocks)
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for block in blocks:
            if parse_run(block, RECV_TIME, "127.0.0.1") is None:
                raise SystemExit("a block of one session was not taken as a run")
        best = min(best, (time.process_time() - started) / lines * 1e6)
    return best


def in_chunks(lines: list[bytes], size: int = 65536) -> list[list[bytes]]:
    """The lines grouped as a server receives them, about ``size`` bytes at a time."""
    chunks: list[list[bytes]] = [[]]
    filled = 0
    for line in lines:
        if filled + len(line) + 1 > size:
            chunks.append([])
            filled = 0
        chunks[-1].append(line)
        filled += len(line) + 1
    return chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=20_000)
    args = parser.parse_args()
    print(f"machine: {bench_peer.machine()}")
    streams = bench_peer.payloads(args.readings, 64)
    lines = [line for stream in streams for line in stream.split(b"\n") if line]
    blocks = [b"".join(line + b"\n" for line in chunk) for stream in streams
              for chunk in in_chunks(stream.split(b"\n")[:-1])]
    small = [b"\n".join(line.replace(b'"gyr_z":0.0002,', b'"gyr_z":2.5e-05,') if index % 20 == 0 else line
                        for index, line in enumerate(block.split(b"\n"))) for block in blocks]
    base = cost(reference, lines)
    print(f"reference (protocol.py): {base:.2f} µs per reading")
    for name in sorted(PARSERS):
        try:
            parser = load(name)
        except ImportError as exc:
            print(f"{name}: not installed ({exc.name})")
            continue
        us = cost(parser.parse, lines)
        many = chunk_cost(parser.parse_many, in_chunks(lines))
        runs = run_cost(parser.parse_run, blocks)
        small_runs = run_cost(parser.parse_run, small)
        print(f"{name}: {us:.2f} µs per reading line by line ({base / us:.2f}x the reference), "
              f"{many:.2f} µs in 64 KiB chunks ({base / many:.2f}x), {runs:.2f} µs in runs of 64 KiB "
              f"({base / runs:.2f}x), {small_runs:.2f} µs in runs where one reading in 20 holds a value "
              f"written with an exponent (2.5e-05)")


if __name__ == "__main__":
    main()

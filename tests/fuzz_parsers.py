#!/usr/bin/env python3
"""Fuzz run of parser equivalence: every parser must give what the reference gives for each line.

Lines are mutations of valid readings and of the corpus in tests/parsers, plus valid readings with
random number texts (ints, decimals, exponents, -0, too long, malformed), ids and times. Compared:
the reading, its CSV row and COPY line, or the reason for refusing it. Every few lines, the last
ones also go to ``parse_many`` as one chunk: each line it takes must be what the reference stores;
and, renumbered to consecutive seqs, to ``parse_run`` as one block: if it is taken as a run, every line
must be stored by the reference, as exactly the run's CSV line, key and seq (some blocks have an
object broken over two lines, which the reference refuses).

    python3 tests/fuzz_parsers.py --lines 1000000 [--seed 1]

Prints how many lines ran and how many were stored; a mismatch prints the line and exits 1.
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "parsers"))
from fuzz_server import SEEDS, mutate  # noqa: E402
from test_equivalence import CORPUS, RECV_TIME, VALID, outcome  # noqa: E402

from whc.parsers import PARSERS, load  # noqa: E402
from whc.parsers.stdlib import reference  # noqa: E402
from whc.storage.sinks.csv import CsvSink  # noqa: E402
from whc.storage.sinks.postgres import copy_line  # noqa: E402

VALUE_NUMBER = re.compile(rb'(?<=":)-?[0-9][0-9.eE+-]*(?=,"(?!seq))')  # sensor values of VALID, not its seq
IDS = [b"r", b"a" * 64, b"a" * 65, b"-x", b"x y", b"\\u0041", b"\xc3\xa9", b"rpi.01_a-b"]
TIMES = [b"2026-11-24T12:00:00.123456+00:00", b"2026-02-29T00:00:00.000000Z", b"2028-02-29T23:59:59.999999Z",
         b"2026-11-24T12:00:00.12345Z", b"2026-11-24 12:00:00.123456Z", b"2026-11-24T12:00:00.123456z",
         b"2026-11-24T23:59:60.000000Z", b"0001-01-01T00:00:00.000000Z"]
ODD_NUMBERS = [b"01", b"1.", b".5", b"+1", b"-", b"NaN", b"1e", b"--1", b"0x1", b"1_0", b"-0", b"0", b"-0.0"]


def number(rng: random.Random) -> bytes:
    if rng.random() < 0.05:
        return rng.choice(ODD_NUMBERS)
    sign = b"-" if rng.random() < 0.3 else b""
    whole = str(rng.choice([0, rng.randint(0, 9), rng.randint(0, 10 ** rng.randint(1, 25))])).encode()
    fraction = b"." + str(rng.randint(0, 10 ** rng.randint(1, 20))).encode() if rng.random() < 0.6 else b""
    exponent = (rng.choice([b"e", b"E"]) + rng.choice([b"", b"+", b"-"]) + str(rng.randint(0, 400)).encode()
                if rng.random() < 0.15 else b"")
    return sign + whole + fraction + exponent


def make_line(rng: random.Random, seeds: list[bytes]) -> bytes:
    if rng.random() < 0.5:
        line = mutate(rng, rng.choice(seeds)) if rng.random() < 0.9 else rng.choice(seeds)
        return line.replace(b"\n", b"")
    line = VALUE_NUMBER.sub(lambda _: number(rng), VALID)
    if rng.random() < 0.2:
        line = line.replace(b"rpi01", rng.choice(IDS))
    if rng.random() < 0.2:
        line = line.replace(b"2026-11-24T12:00:00.123456Z", rng.choice(TIMES))
    return line


def run_is_the_references(run, lines: list[bytes]) -> bool:
    """Every line is stored by the reference, as the run's CSV line, with its session key and seq."""
    results = [outcome(reference, line) for line in lines if line.strip()]
    if any(result[0] != "stored" for result in results):
        return False
    rows = [result[2] for result in results]
    seqs = [row[1] for row in rows] if run.key is not None else []
    return (run.lines == [row[2] for row in rows] and {row[0] for row in rows} == {run.key}
            and seqs == list(range(run.first_seq, run.first_seq + len(seqs)))
            and (run.first, run.last) == (results[0][1], results[-1][1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    rng = random.Random(args.seed)
    loaded = {name: load(name) for name in sorted(PARSERS)}
    parsers = {name: parser.parse for name, parser in loaded.items()}
    seeds = SEEDS + [line for line in CORPUS if len(line) < 1000]
    started = time.monotonic()
    stored = chunks_taken = runs_taken = 0
    recent: list[tuple[bytes, tuple]] = []
    for _ in range(args.lines):
        line = make_line(rng, seeds)
        expected = outcome(reference, line)
        stored += expected[0] == "stored"
        for name, parse in parsers.items():
            if outcome(parse, line) != expected:
                print(f"MISMATCH ({name}): {line!r}\nreference: {expected}\n{name}: {outcome(parse, line)}",
                      file=sys.stderr)
                return 1
        recent = [*recent[-3:], (line, expected)] if expected[0] == "stored" or rng.random() < 0.2 else []
        if len(recent) >= 2 and rng.random() < 0.5:
            chunk = [seen for seen, _ in recent]
            for name, parser in loaded.items():
                taken = parser.parse_many(chunk, RECV_TIME, "127.0.0.1")
                chunks_taken += len(taken) == len(chunk)
                got = [("stored", dict(r), CsvSink.encode(r), copy_line(r)) for r in taken]
                if got != [result for _, result in recent][:len(taken)]:
                    print(f"MISMATCH ({name}.parse_many): {chunk!r}", file=sys.stderr)
                    return 1
            block = [seen.replace(b'"seq":7', b'"seq":%d' % (7 + index)) for index, seen in enumerate(chunk)]
            if rng.random() < 0.2:  # an object over two lines, at a comma (kept, or made the line end)
                at = rng.randrange(len(block))
                block[at] = re.sub(rb",(?=\")", rng.choice([b",\n", b"\n"]), block[at], count=1)
                block = b"\n".join(block).split(b"\n")
            for name, parser in loaded.items():
                run = parser.parse_run(b"".join(seen + b"\n" for seen in block), RECV_TIME, "127.0.0.1")
                runs_taken += run is not None
                if run is not None and not run_is_the_references(run, block):
                    print(f"MISMATCH ({name}.parse_run): {block!r}", file=sys.stderr)
                    return 1
    elapsed = time.monotonic() - started
    print(f"parser fuzz: {args.lines:,} lines (seed {args.seed}), {stored:,} stored by the reference, "
          f"{', '.join(parsers)} gave the same for every line; {chunks_taken:,} chunks taken whole at once, "
          f"{runs_taken:,} blocks as runs; every line taken as the reference stores it; {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

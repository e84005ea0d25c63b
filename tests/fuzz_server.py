#!/usr/bin/env python3
"""Fuzz run of the server's line handling: mutated and random inputs through framing, parsing,
validation and CSV encoding, checking every property in tests/fuzzing.py.

    python3 tests/fuzz_server.py --inputs 1000000 [--seed 1] [--parser stdlib|msgspec]

Prints how many inputs ran and what came of them; any failure prints the input and exits 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzzing import check  # noqa: E402

from whc.parsers import PARSERS  # noqa: E402

SEEDS = [
    json.dumps({"time": "2026-11-24T12:00:00.123456Z", "sh_id": "rpi01", "ori_r": 1.5, "ori_p": 358.25,
                "ori_y": 12.0, "gyr_x": 0.001, "gyr_y": -0.002, "gyr_z": 0.0, "acc_x": 0.01, "acc_y": -1e-3,
                "acc_z": 0.99, "session": "a1b2", "seq": 41}).encode(),
    b'{"hello": 1, "acks": true, "sh_id": "rpi01", "token": "t"}',
    b'{"sh_id": "x", "vibration": 1.25, "note": null, "time": "2026-03-01T01:30:00+01:00"}',
    b'{"sh_id": "x", "extra": 1, "src_ip": "1.2.3.4", "recv_time": "now"}',
    b'\xef\xbb\xbf{"sh_id":"a","acc_x":1}{"sh_id":"a","acc_z":"0.998","time":1764072000.25} {"sh_id":"b"}',
]
TOKENS = [b"{", b"}", b"[", b"]", b'"', b":", b",", b"\\", b"\\u0000", b"\\ud800", b"NaN", b"-Infinity",
          b"1e999", b"-0", b"0.0000000000000000000000000000000000000000001", b"\n", b"\r", b"\r\n", b"\x00",
          b"\xff", b"\xc3", b"\xe2\x80\xa8", b"true", b"null", b'"=1+2"', b'"@x"', b'"-"', b" " * 5]


def mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.random()
        at = rng.randint(0, len(data))
        if choice < 0.3 and data:
            del data[at:at + rng.randint(1, 8)]
        elif choice < 0.6:
            data[at:at] = rng.choice(TOKENS)
        elif choice < 0.8 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        else:
            data[at:at] = data[rng.randint(0, len(data)):][: rng.randint(1, 40)]
    return bytes(data)


def make_input(rng: random.Random) -> tuple[list[bytes], int]:
    lines = []
    for _ in range(rng.randint(1, 8)):
        kind = rng.random()
        if kind < 0.7:
            lines.append(mutate(rng, rng.choice(SEEDS)))
        elif kind < 0.85:
            lines.append(rng.choice(SEEDS))
        else:
            lines.append(rng.randbytes(rng.randint(0, 300)))
    data = b"".join(line + rng.choice([b"\n", b"\r\n", b"\n\n", b""]) for line in lines)
    cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(0, 5)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return chunks, rng.choice([128, 256, 1024, 65536])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parser", choices=sorted(PARSERS), default="stdlib", help="line parser (whc/parsers)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # every rejected line would be logged
    rng = random.Random(args.seed)
    started = time.monotonic()
    stored = 0
    for index in range(args.inputs):
        chunks, limit = make_input(rng)
        try:
            stored += check(chunks, limit, args.parser)
        except Exception:
            print(f"FAILED on input {index}: chunks={chunks!r} max_line_bytes={limit}", file=sys.stderr)
            traceback.print_exc()
            return 1
    elapsed = time.monotonic() - started
    print(f"fuzz ({args.parser} parser): {args.inputs:,} inputs (seed {args.seed}), {stored:,} rows stored, "
          f"0 failures, {elapsed:.0f} s ({args.inputs / elapsed:,.0f} inputs/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

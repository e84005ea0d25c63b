"""A received chunk of plain readings is taken at once: the handler then does exactly what it does
line by line (rows, rejects and their line numbers, spans, acks and error lines), however the
chunk mixes plain lines with hellos, status lines, refusals, several units and cut lines."""

from __future__ import annotations

import json
import random

import pytest

from whc.parsers import PARSERS, load
from whc.serving.handler import Handler
from whc.storage.sinks.csv import CsvSink

NOW = "2026-11-25T12:00:00.000000Z"


class LineByLine:
    """A parser that takes no chunk at once, so every line goes the line-by-line way."""

    def __init__(self, name: str) -> None:
        self.parse = load(name).parse

    @staticmethod
    def parse_many(lines, recv_time, src_ip):
        return []


class Counting:
    """The named parser, counting the lines its ``parse_many`` takes at once."""

    def __init__(self, name: str) -> None:
        self.parser = load(name)
        self.parse = self.parser.parse
        self.taken = 0

    def parse_many(self, lines, recv_time, src_ip):
        readings = self.parser.parse_many(lines, recv_time, src_ip)
        self.taken += len(readings)
        return readings


def line(sh_id: str = "rpi01", seq: int = 0, **extra) -> bytes:
    reading = {"time": f"2026-11-25T12:00:{seq % 60:02d}.{seq:06d}Z", "sh_id": sh_id, "ori_r": 1.5 + seq,
               "acc_z": -0.998, "session": f"s{sh_id}", "seq": seq, **extra}
    return json.dumps(reading, separators=(",", ":")).encode()


ODD = [b'{"status":1,"backlog":3}', b"", b"   ", b"not json", line(vibration=2), line(ori_r="x"),
       line("rpi02"), line().replace(b",", b", "), line() + b"\r", line() + line(seq=9), b'{"sh_id":"rpi01"}',
       line(ori_r=1e-7), b"x" * 300]


def stream(rng: random.Random) -> bytes:
    hello = json.dumps({"hello": 1, "acks": True, "sh_id": "rpi01"}).encode() + b"\n"
    lines = [rng.choice(ODD) if rng.random() < 0.15 else line(rng.choice(["rpi01", "rpi01", "rpi03"]), seq)
             for seq in range(rng.randint(1, 40))]
    return hello + b"\n".join(lines) + (b"\n" if rng.random() < 0.8 else b"")


def outcome(handler: Handler, data: bytes, cuts: list[int]) -> list:
    """Everything the server sees of the handler while ``data`` arrives in pieces cut at ``cuts``."""
    seen = []
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    for index, piece in enumerate(pieces):
        batch = handler.feed(piece, NOW, eof=index == len(pieces) - 1)
        if batch is not None:
            spans = [(s.sh_id, s.start, s.end, s.first.get("seq"), s.last.get("seq")) for s in batch.spans]
            seen.append((batch.rows, batch.rejects, spans, batch.last_line))
            handler.committed(batch)
        seen.append((handler.outgoing(), handler.lines, handler.finished, handler.auth_failure))
    return seen


@pytest.mark.parametrize("name", sorted(PARSERS))
@pytest.mark.parametrize("identities", [None, frozenset({"rpi01", "rpi03"})])
def test_chunks_taken_at_once_give_what_line_by_line_gives(name: str, identities) -> None:
    rng = random.Random(7)
    counting = Counting(name)
    for _ in range(300):
        data = stream(rng)
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 4))))
        fast = Handler("127.0.0.1", 256, CsvSink.encode, identities=identities, parser=counting)
        slow = Handler("127.0.0.1", 256, CsvSink.encode, identities=identities, parser=LineByLine(name))
        assert outcome(fast, data, cuts) == outcome(slow, data, cuts), data
    assert counting.taken > 1000, "most lines were taken at once"

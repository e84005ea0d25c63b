"""A received chunk of plain readings is taken at once (as a run, or as the plain lines that begin
it): the handler then does exactly what it does line by line (rows, rejects and their line numbers,
spans, acks and error lines), however the chunk mixes plain lines with hellos, status lines,
refusals, several units, resends and cut lines."""

from __future__ import annotations

import json
import random

import pytest

from whc.parsers import PARSERS, load
from whc.serving.handler import Handler
from whc.storage import RunRows
from whc.storage.sinks.csv import CsvSink

NOW = "2026-11-25T12:00:00.000000Z"


class LineByLine:
    """A parser that takes no chunk at once, so every line goes the line-by-line way."""

    def __init__(self, name: str) -> None:
        self.parse = load(name).parse

    @staticmethod
    def parse_many(lines, recv_time, src_ip):
        return []

    @staticmethod
    def parse_run(block, recv_time, src_ip):
        return None


class Counting:
    """The named parser, counting the lines its ``parse_many`` takes at once."""

    def __init__(self, name: str) -> None:
        self.parser = load(name)
        self.parse = self.parser.parse
        self.taken = self.in_runs = 0

    def parse_many(self, lines, recv_time, src_ip):
        readings = self.parser.parse_many(lines, recv_time, src_ip)
        self.taken += len(readings)
        return readings

    def parse_run(self, block, recv_time, src_ip):
        run = self.parser.parse_run(block, recv_time, src_ip)
        self.in_runs += len(run.lines) if run else 0
        return run


def line(sh_id: str = "rpi01", seq: int = 0, **extra) -> bytes:
    reading = {"time": f"2026-11-25T12:00:{seq % 60:02d}.{seq:06d}Z", "sh_id": sh_id, "ori_r": 1.5 + seq,
               "acc_z": -0.998, "session": f"s{sh_id}", "seq": seq, **extra}
    return json.dumps(reading, separators=(",", ":")).encode()


ODD = [b'{"status":1,"backlog":3}', b"", b"   ", b"not json", line(vibration=2), line(ori_r="x"),
       line("rpi02"), line().replace(b",", b", "), line() + b"\r", line() + line(seq=9), b'{"sh_id":"rpi01"}',
       line(ori_r=1e-7), b"x" * 300, line(seq=5).replace(b',"acc_z"', b',\n"acc_z"'),
       line(seq=5).replace(b',"acc_z"', b'\n"acc_z"'), b"true", b'[{}\n{}]', b'{"a":{}\n"b":{}}']


def stream(rng: random.Random) -> bytes:
    hello = json.dumps({"hello": 1, "acks": True, "sh_id": "rpi01"}).encode() + b"\n"
    lines = [rng.choice(ODD) if rng.random() < 0.15 else line(rng.choice(["rpi01", "rpi01", "rpi03"]), seq)
             for seq in range(rng.randint(1, 40))]
    return hello + b"\n".join(lines) + (b"\n" if rng.random() < 0.8 else b"")


def sender_stream(rng: random.Random) -> bytes:
    """A sender's stream: a hello, then readings of one session (with a resend now and then), rarely an odd line."""
    hello = json.dumps({"hello": 1, "acks": True, "sh_id": "rpi01"}).encode() + b"\n"
    seqs = list(range(rng.randint(1, 60)))
    if rng.random() < 0.3:
        back = rng.randrange(len(seqs))
        seqs[back:back] = seqs[rng.randrange(back + 1):back]  # sent again after a reconnect
    lines = [rng.choice(ODD) if rng.random() < 0.03 else line("rpi01", seq) for seq in seqs]
    end = b"\r\n" if rng.random() < 0.2 else b"\n"  # CRLF now and then
    return hello + end.join(lines) + (end if rng.random() < 0.8 else b"")


def rows_of(batch_rows: list) -> list:
    """Rows as line by line makes them: a run's Row is one row per line."""
    rows = []
    for key, seq, payload in batch_rows:
        if payload.__class__ is RunRows:
            rows.extend((key, seq + index if key else 0, text) for index, text in enumerate(payload.lines))
        else:
            rows.append((key, seq, payload))
    return rows


def outcome(handler: Handler, data: bytes, cuts: list[int]) -> list:
    """Everything the server sees of the handler while ``data`` arrives in pieces cut at ``cuts``."""
    seen = []
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    for index, piece in enumerate(pieces):
        batch = handler.feed(piece, NOW, eof=index == len(pieces) - 1)
        if batch is not None:
            spans = [(s.sh_id, s.start, s.end, s.first.get("seq"), s.last.get("seq")) for s in batch.spans]
            seen.append((rows_of(batch.rows), batch.rejects, spans, batch.last_line, batch.readings))
            handler.committed(batch)
        seen.append((handler.outgoing(), handler.lines, handler.finished, handler.auth_failure))
    return seen


@pytest.mark.parametrize("name", sorted(PARSERS))
@pytest.mark.parametrize("identities", [None, frozenset({"rpi01", "rpi03"})])
def test_chunks_taken_at_once_give_what_line_by_line_gives(name: str, identities) -> None:
    rng = random.Random(7)
    counting = Counting(name)
    for make in [stream] * 300 + [sender_stream] * 300:
        data = make(rng)
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 4))))
        fast = Handler("127.0.0.1", 256, CsvSink.encode, identities=identities, parser=counting, runs=True)
        slow = Handler("127.0.0.1", 256, CsvSink.encode, identities=identities, parser=LineByLine(name))
        assert outcome(fast, data, cuts) == outcome(slow, data, cuts), data
    assert counting.taken > 1000, "most lines of mixed streams were taken at once"
    assert counting.in_runs > 1000, "lines after the first piece of senders' streams were taken as runs"

"""The server's line handling as a pure function, and the properties every input must keep.

Shared by the property tests (tests/security) and the fuzz run (tests/fuzz_server.py).
"""

from __future__ import annotations

import csv
import json

from whc.columns import NAMES
from whc.parsers import load
from whc.serving.handler import Handler
from whc.storage import RunRows
from whc.storage.sinks.csv import CsvSink

RECV_TIME = "2026-11-24T12:00:00.000000Z"
FORMULA_STARTS = ("=", "+", "-", "@")


def feed(chunks: list[bytes], max_line_bytes: int = 1024, eof: bool = True,
         parser: str = "stdlib") -> tuple[Handler, list, list]:
    """Run chunks through one connection's handler; return it with the rows and rejects it produced."""
    handler = Handler("127.0.0.1", max_line_bytes, CsvSink.encode, parser=load(parser), runs=CsvSink.takes_runs)
    rows: list = []
    rejects: list = []
    for chunk in chunks + ([b""] if eof else []):
        batch = handler.feed(chunk, RECV_TIME, eof=eof and chunk == b"")
        if batch is not None:
            for key, seq, payload in batch.rows:
                if payload.__class__ is RunRows:  # a run's Row holds its CSV lines: one row each here
                    rows.extend((key, seq, line) for line in payload.lines)
                else:
                    rows.append((key, seq, payload))
            rejects.extend(batch.rejects)
        if handler.finished:
            break
    return handler, rows, rejects


def check(chunks: list[bytes], max_line_bytes: int = 1024, parser: str = "stdlib") -> int:
    """Assert the properties; return how many rows were stored."""
    handler, rows, encoded_rejects = feed(chunks, max_line_bytes, parser=parser)
    rejects = [json.loads(record) for record in encoded_rejects]
    assert all(record.endswith(b"\n") and record.count(b"\n") == 1 for record in encoded_rejects)
    line_rejects = [r for r in rejects if r["line"] not in (0, None)]  # 0: a refused hello; None: a status line
    assert all(r["reason"].startswith("status line") for r in rejects if r["line"] is None)
    assert handler.lines == len(rows) + len(line_rejects), "every counted line is stored or recorded"
    for _key, _seq, line in rows:
        assert line.endswith("\n") and line.count("\n") == 1, "one row is one line"
        (cells,) = list(csv.reader([line]))
        assert len(cells) == len(NAMES), "every row has the header's column count"
        for cell in cells:
            if cell.startswith(FORMULA_STARTS):
                float(cell)  # only a number may start with - (or +): no spreadsheet formula
    for record in rejects:
        assert len(record.get("raw", "")) <= max_line_bytes + 4 or "raw_b64" in record
    return len(rows)

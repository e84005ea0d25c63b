"""The rejects log: every refused line, verbatim up to the limit, with time, source and reason."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from .appendfile import AppendFile


def reject_record(recv_time: str, src_ip: str | None, line: int | None, reason: str, raw: bytes) -> dict[str, Any]:
    """One JSON-ready rejects record; raw bytes that are not UTF-8 are kept as base64."""
    record: dict[str, Any] = {"time": recv_time, "src_ip": src_ip, "line": line, "reason": reason}
    try:
        record["raw"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        record["raw_b64"] = base64.b64encode(raw).decode("ascii")
    return record


class RejectsLog:
    """JSON Lines file of refused lines, committed together with the sink."""

    def __init__(self, path: Path) -> None:
        self.file = AppendFile(path)
        self.count = 0

    def stage(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self.file.append((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        self.count += len(records)

    def commit(self) -> None:
        self.file.commit()

    def close(self) -> None:
        self.file.close()

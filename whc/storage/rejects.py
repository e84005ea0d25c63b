"""The rejects log: every refused line, verbatim up to the limit, with time, source and reason."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from .appendfile import AppendFile


def reject_record(recv_time: str, src_ip: str | None, line: int | None, reason: str, raw: bytes) -> bytes:
    """One rejects-log line (JSON); raw bytes that are not UTF-8 are kept as base64.

    Encoded at once, so a flood of bad lines waiting for the disk costs bytes, not objects."""
    record: dict[str, Any] = {"time": recv_time, "src_ip": src_ip, "line": line, "reason": reason}
    try:
        record["raw"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        record["raw_b64"] = base64.b64encode(raw).decode("ascii")
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


class RejectsLog:
    """JSON Lines file of refused lines, committed together with the sink; private (0600), since
    clients' bytes land in it verbatim."""

    def __init__(self, path: Path) -> None:
        self.file = AppendFile(path, private=True)

    def stage(self, records: list[bytes]) -> None:
        for record in records:
            self.file.append(record)

    def commit(self) -> None:
        self.file.commit()

    def reopen(self) -> None:
        """Start appending to the file now at the path (after an external logrotate); call between commits."""
        fresh = AppendFile(self.file.path, private=True)
        self.file.close()
        self.file = fresh

    def close(self) -> None:
        self.file.close()

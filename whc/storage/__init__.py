"""Storage: where accepted readings go, made durable before they are acknowledged.

``committer`` runs the group commit, ``sinks/`` holds one module per destination
(CSV by default), ``rejects`` keeps every refused line, ``dedup`` remembers the
highest ``seq`` stored per sender session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SessionKey = tuple[str, str]
Row = tuple[SessionKey | None, int, Any]
"""A reading as a sink encoded it: its (sh_id, session) key and seq (for dedup), and the payload to write.

Readings are encoded as soon as they are parsed, so what waits for the disk is compact."""


@dataclass
class Batch:
    """What one connection handed over in one go: readings, refused lines, and how far it got."""

    owner: Any  # the server's connection (set when submitted); opaque to storage
    last_line: int  # the connection's line count this batch brings it to
    nbytes: int  # bytes received for it (for backpressure accounting)
    rows: list[Row] = field(default_factory=list)
    rejects: list[bytes] = field(default_factory=list)  # encoded rejects-log lines

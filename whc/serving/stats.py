"""The server's own figures: the periodic stats line, and the server-wide view for /metrics and /status.json."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger("whc.serving.server")  # the server's logger: the stats line keeps its source


def log_stats(server: Server, rate: float) -> None:
    """Log one stats line; ``rate`` is readings per second since the last one."""
    c = server.committer
    state = f" WRITES FAILING: {c.failing}" if c.failing else ""
    log.info("stats: connections=%d readings/s=%.1f written=%d rejected=%d duplicates=%d refused=%d "
             "pending_bytes=%d%s", len(server.conns), rate, c.written, c.rejected, c.duplicates,
             server.gate.denied + server.gate.auth_failures, server.backpressure.pending, state)


def server_view(server: Server) -> dict[str, Any]:
    """The server-wide figures for /metrics and /status.json (read by the HTTP thread)."""
    c = server.committer
    return {"readings_written_total": c.written, "readings_rejected_total": c.rejected,
            "readings_duplicate_total": c.duplicates, "connections": len(server.conns),
            "pending_bytes": server.backpressure.pending, "writes_failing": c.failing is not None,
            "writes_failing_reason": c.failing,
            "connections_refused_total": server.gate.denied + server.gate.auth_failures,
            "started_timestamp": server.started, "sink": c.sink.name}

"""The server's side of watching the fleet: per-unit state fed from the event loop, and the
optional HTTP endpoints that show it.

The server calls ``unit_news``, ``committed``, ``closed`` and ``tick`` from its loop; every call
is cheap (once per batch or per second) and an error in it is logged, never passed on: the
fleet's state must never cost a reading.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..config import Config
from ..logs import RateLimitedLog
from ..serving.allowlist import Allowlist
from ..storage import Batch
from .http import StatusHttpServer
from .units import Fleet

log = logging.getLogger(__name__)


class FleetWatch:
    """Per-unit state and the HTTP endpoints (``start``/``stop``); ``server_view`` gives the server-wide figures."""

    def __init__(self, config: Config, allowlist: Allowlist, known_units: set[str],
                 server_view: Callable[[], dict[str, Any]]) -> None:
        self.fleet = Fleet(config["silent_after"])
        self.fleet.known(known_units)
        self.server_view = server_view
        self._errors = RateLimitedLog(60.0)
        self.http = (StatusHttpServer(config["http_ip"], config["http_port"], allowlist, self.snapshot)
                     if config["http_port"] else None)

    def start(self) -> None:
        if self.http is not None:
            self.http.start()

    def stop(self) -> None:
        if self.http is not None:
            self.http.stop()

    def unit_news(self, conn: Any) -> None:
        """The connection's handler may have learnt its unit (hello) or got a status line: take them."""
        h = conn.handler
        if h.status is None and (conn.unit is not None or h.sh_id is None):
            return
        try:
            if conn.unit is None and h.sh_id is not None:
                self.fleet.attach(conn, h.sh_id, h.ip)
            status = h.take_status()
            if status is not None:
                self.fleet.report(conn, status, h.ip, time.monotonic())
        except Exception:
            self._error()

    def committed(self, batch: Batch, conn: Any, now: float) -> None:
        try:
            self.fleet.committed(batch, conn, conn.handler.ip, now)
        except Exception:
            self._error()

    def closed(self, conn: Any) -> None:
        if conn.unit is not None:
            try:
                self.fleet.detach(conn)
            except Exception:
                self._error()

    def tick(self, now: float) -> None:
        """Once a second: rate history, silence and stalls."""
        try:
            self.fleet.tick(now)
        except Exception:
            self._error()

    def snapshot(self) -> dict[str, Any]:
        """The fleet and the server as plain data; called by the HTTP thread (reads only, never blocks the loop)."""
        return self.fleet.snapshot(time.monotonic(), self.server_view())

    def _error(self) -> None:
        if self._errors.due("fleet", time.monotonic()):
            log.exception("internal error keeping the fleet's state (ingest goes on)")

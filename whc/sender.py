"""One Pi's sender, the mirror of ``whc.serving.server.Server``: sample, buffer, forward, show.

The ``Sender`` owns the life cycle of its parts: the sampler thread fills the buffer, the
forwarder thread ships it, and the main thread spills to the spool, drives the LED and
logs stats until a stop is requested or a part fails.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from . import protocol
from .buffering.buffer import Buffer
from .buffering.forwarder import Forwarder
from .config import Config
from .monitoring.health import HealthReport
from .sampling.backends import SensorBackend
from .sampling.led import StatusDisplay
from .sampling.sampler import Sampler
from .tls import client_context

log = logging.getLogger(__name__)


class Sender:
    """Streams one unit's readings to the server until stopped.

    Callers use ``run`` (returns the exit code), ``request_stop`` and ``install_signal_handlers``.
    """

    def __init__(self, settings: Config, unit: str, backend: SensorBackend) -> None:
        self.settings = settings
        self.unit = unit
        self.backend = backend
        self._stop = threading.Event()
        self.display = StatusDisplay(backend.sense, unit, enabled=settings["led"], low_light=settings["led_low_light"])
        self.buffer = Buffer(settings.resolve("spool_dir"), settings["spool_max_bytes"], settings["memory_readings"],
                             settings["fsync_interval"])
        self.servers = list(settings["servers"] or [(settings["ip"], settings["port"])])
        hello = protocol.encode_hello(acks=True, sh_id=unit, token=settings.secret("token"), status=True)
        self.sampler = Sampler(backend, unit, settings["interval"], self.buffer.add)
        health = HealthReport(unit, self.buffer, self.sampler, backend)
        self.forwarder = Forwarder(self.buffer, self.servers, settings["max_in_flight"], settings["ack_timeout"],
                                   hello, _tls_context(settings), settings["tls_server_name"], health.line,
                                   settings["stats_interval"])

    def request_stop(self, *_: object) -> None:
        """Ask ``run`` to stop (safe from a signal handler or another thread)."""
        self._stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self) -> int:
        """Sample, buffer and forward until stopped; 0 on a clean stop, 1 if a part failed."""
        settings, buffer, forwarder, sampler = self.settings, self.buffer, self.forwarder, self.sampler
        log.info("sender %s: %s, sensors %s, interval %g s, to %s, session %s", self.unit, self.backend.name,
                 ",".join(settings["sensors"]), settings["interval"],
                 ", ".join(f"{host} port {port}" for host, port in self.servers), buffer.session)
        forwarder.start()
        sampler.start()
        code = 1  # unless the loop ends as asked
        try:
            code = self._loop()
        finally:  # whatever happened, what is in memory goes to the spool
            sampler.stop()
            forwarder.stop()
            log.info("stopping: %d unacknowledged readings to keep in %s", buffer.waiting, buffer.folder)
            buffer.close()
            if code == 0:
                self.display.close()
            log.info("stopped; %d readings this run, %d waiting in %s, %d dropped", sampler.count, buffer.waiting,
                     buffer.folder, buffer.dropped)
        return code

    def _loop(self) -> int:
        """Spill, show, watch the parts and log stats until a stop is asked (0) or a part fails (1)."""
        settings, buffer, forwarder = self.settings, self.buffer, self.forwarder
        stats_every = settings["stats_interval"]
        next_stats = time.monotonic() + stats_every
        self._last = (0, time.monotonic(), 0)
        while not self._stop.wait(settings["fsync_interval"]):
            buffer.spill(spill_all=not forwarder.connected)
            healthy = forwarder.connected and not buffer.spool.segments and buffer.disk_error is None
            self.display.set_ok() if healthy else self.display.set_trouble()
            failure = self._failure()
            if failure is not None:
                log.error("stopping: %s", failure)
                self.display.show_fatal()
                return 1
            if time.monotonic() >= next_stats:
                next_stats = time.monotonic() + stats_every
                self._log_stats()
        return 0

    def _failure(self) -> str | None:
        """Why the sender cannot go on, or None."""
        if not self.forwarder.is_alive():
            return "the forwarder thread ended"
        if self.sampler.failure is not None or not self.sampler.is_alive():
            return f"sampling failed: {self.sampler.failure}"
        return None

    def _log_stats(self) -> None:
        count, now = self.sampler.count, time.monotonic()
        sensors = self.backend.counters()  # IMU samples seen, skipped, repeated; failures per sensor
        last_count, last_time, last_imu = self._last
        self._last = (count, now, sensors.get("imu_samples", 0))
        seconds = now - last_time
        log.info("stats: readings/s=%.1f read=%d imu_samples/s=%.1f acked_backlog=%d spooled_bytes=%d dropped=%d "
                 "rejected=%d connected=%s spool=%s %s", (count - last_count) / seconds, count,
                 (sensors.get("imu_samples", 0) - last_imu) / seconds, self.buffer.backlog, self.buffer.spool.size,
                 self.buffer.dropped, self.forwarder.rejected, self.forwarder.connected,
                 "failing" if self.buffer.disk_error else "ok", " ".join(f"{k}={v}" for k, v in sensors.items()))


def _tls_context(settings: Config):
    """The TLS client context the settings ask for, or None for plain TCP."""
    if not settings["tls_ca_file"]:
        return None
    cert = settings.resolve("tls_client_cert_file") if settings["tls_client_cert_file"] else None
    key = settings.resolve("tls_client_key_file") if settings["tls_client_key_file"] else None
    return client_context(settings.resolve("tls_ca_file"), cert, key)

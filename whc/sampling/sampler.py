"""The sampling loop: one reading per tick on the monotonic clock, handed to the buffer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..protocol import utc_now
from .backends import SensorBackend

log = logging.getLogger(__name__)


class Sampler(threading.Thread):
    """Reads ``backend`` every ``interval`` seconds (0: once per new IMU sample) without drift."""

    def __init__(
        self, backend: SensorBackend, unit: str, interval: float, deliver: Callable[[dict[str, Any]], None]
    ) -> None:
        super().__init__(name="sampler", daemon=True)
        self.backend = backend
        self.unit = unit
        self.interval = interval
        self.deliver = deliver
        self.stopping = threading.Event()
        self.count = 0
        self.late = 0
        self.failure: BaseException | None = None

    def sample(self) -> dict[str, Any]:
        """One reading: time and unit first, then the sensor columns (7 significant digits, the
        precision of the sensors' float32 values; more digits would be noise).

        With interval 0 each reading takes the IMU sample after the previous reading's (every sample once)."""
        values = self.backend.read(follow=self.interval <= 0)
        reading: dict[str, Any] = {"time": utc_now(), "sh_id": self.unit}
        for key, value in values.items():
            reading[key] = value if value is None else float(f"{value:.7g}")
        return reading

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self.join(timeout)

    def run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # a broken sensor ends sampling; the sender reports and exits
            log.exception("sampling stopped: %s", exc)
            self.failure = exc

    def _loop(self) -> None:
        interval = self.interval
        next_tick = time.monotonic()
        warned = False
        while not self.stopping.is_set():
            self.deliver(self.sample())
            self.count += 1
            if interval <= 0:
                continue
            next_tick += interval
            delay = next_tick - time.monotonic()
            if delay > 0:
                self.stopping.wait(delay)
            elif delay < -interval:  # more than a whole tick behind: run flat out, do not burst to catch up
                self.late += 1
                if not warned:
                    warned = True
                    log.warning(
                        "a reading takes longer than interval %g s; sampling as fast as the sensors allow",
                        interval,
                    )
                next_tick = time.monotonic()

"""Keeps RTIMULib's fusion fed: one thread polls the IMU at the IMU's own poll interval, whatever ``interval`` is.

RTIMULib only advances its fusion (roll, pitch, yaw) when ``IMURead()`` returns a new sample, and its gyro bias
estimate needs hundreds of still samples. Polling once per row (one row a second) would stretch each gyro
sample over a whole second and leave the orientation lagging by minutes. So this thread polls as the library
means it to (every ``IMUGetPollInterval()`` ms: 3 on the LSM9DS1, 10 on the emulator), numbers every new
sample, and keeps the most recent ones; each row then takes one whole sample (the newest, or with interval 0
the next one, so that no sample is used twice nor skipped while the sender keeps up). An IMU silent for more
than 0.5 s is polled less and less often (down to every 2 s), so a dead bus never floods the journal with
RTIMULib's per-read error messages; the first new sample restores the normal rate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

KEEP = 1024  # samples kept for interval 0: about 8 s at 119 Hz before a slow sender starts skipping
STALL_POLLS = 5  # polls in a row without a new sample before ``on_stall`` is called (and every 5 after)
QUIET = 0.5  # seconds without a sample after which a silent IMU is polled less and less often...
SLOWEST_POLL = 2.0  # ...down to once every this many seconds (RTIMULib prints an error per failed read)


@dataclass(frozen=True)
class ImuSample:
    """One new IMU sample: its number in this run (from 1), RTIMULib's data dict, and when it was read."""

    seq: int
    data: dict[str, Any]
    monotonic: float


class ImuFeed:
    """Polls ``imu`` (an RTIMU object) in a daemon thread until ``stop()``."""

    def __init__(self, imu: Any, on_stall: Callable[[], object] = lambda: None) -> None:
        self._imu = imu
        self._on_stall = on_stall
        self.poll_interval = max(int(imu.IMUGetPollInterval()), 1) / 1000.0
        self.samples = 0  # new samples seen
        self.errors = 0  # polls that raised (bus errors)
        self._recent: deque[ImuSample] = deque(maxlen=KEEP)
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._warned = False
        self._thread = threading.Thread(target=self._run, name="whc-imu", daemon=True)

    def start(self) -> ImuFeed:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def newest(self, timeout: float) -> ImuSample | None:
        """The newest sample, waiting up to ``timeout`` s for the first one; None if there is none yet."""
        with self._cond:
            self._cond.wait_for(lambda: self._recent or self._stopping.is_set(), timeout)
            return self._recent[-1] if self._recent else None

    def after(self, seq: int, timeout: float) -> ImuSample | None:
        """The first kept sample newer than number ``seq``, waiting up to ``timeout`` s for one; None if none came.

        If the ones right after ``seq`` were already dropped (the reader fell more than KEEP behind), this is the
        oldest kept one; the caller counts the gap.
        """
        with self._cond:
            self._cond.wait_for(lambda: (self._recent and self._recent[-1].seq > seq) or self._stopping.is_set(),
                                timeout)
            if not self._recent or self._recent[-1].seq <= seq:
                return None
            first = self._recent[0].seq
            return self._recent[max(seq + 1 - first, 0)]

    def _run(self) -> None:
        imu, idle, last_new = self._imu, 0, time.monotonic()
        while not self._stopping.is_set():
            data = None
            try:
                if imu.IMURead():
                    data = imu.getIMUData()
            except Exception as e:  # a bus error costs this poll, never the thread
                self.errors += 1
                if not self._warned:
                    self._warned = True
                    log.warning("IMU read failed (%s); rows get empty IMU fields while it fails", e)
            now = time.monotonic()
            if data is not None:
                idle, last_new = 0, now
                with self._cond:
                    self.samples += 1
                    self._recent.append(ImuSample(self.samples, data, now))
                    self._cond.notify_all()
            else:
                idle += 1
                if idle % STALL_POLLS == 0:
                    self._on_stall()
            silent = now - last_new
            self._stopping.wait(self.poll_interval if silent < QUIET else min(SLOWEST_POLL, silent / 4))
        with self._cond:
            self._cond.notify_all()

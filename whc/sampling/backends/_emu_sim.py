"""Headless driver of the sense_emu simulation: what ``sense_emu_gui`` does, without the GUI.

sense_emu keeps the emulated HAT in fixed files, in ``/dev/shm`` (``/tmp`` if there is none):
``rpi-sense-emu-imu``, ``-pressure``, ``-humidity`` and ``-screen`` (memory-mapped registers), plus the lock
file ``rpi-sense-emu-pid`` holding the pid of the process that drives them (the GUI or ``sense_play``).
``SenseHat()`` only reads these files; unless something runs IMUServer, PressureServer and HumidityServer
(the GUI does, with their noise/world simulation on), the IMU never produces a new sample, and
``SenseHat()`` itself waits 1 s for the lock and then tries to spawn ``sense_emu_gui``.

So there is one emulated HAT per machine, and this module makes sure it is driven exactly once:

- if a live process holds the lock (the GUI, ``sense_play`` or another whc sender), we only read: all
  emulated senders on the machine share that simulated HAT (and its LED matrix);
- otherwise this process takes the lock and runs the three servers; a watchdog thread checks every
  second, so another sender takes over when the driving one stops;
- whc processes elect the driver under an ``flock`` on ``rpi-sense-emu-whc-election``, so two senders never
  both start the servers (sense_emu's own lock has a check-then-create race).

Within one process the driver is shared and reference counted (several back ends, as in tests).
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from sense_emu.humidity import HumidityServer, init_humidity
from sense_emu.imu import IMUServer
from sense_emu.lock import EmulatorLock, lock_filename, pid_exists
from sense_emu.pressure import PressureServer, init_pressure

log = logging.getLogger(__name__)

WATCH_INTERVAL = 1.0  # seconds between checks that someone still drives the emulator
SETTLED_G = 0.97  # |accel| once the simulation's smoothing window is full (level, at rest: 1 g)
ELECTION_FILE = os.path.join(os.path.dirname(lock_filename()), "rpi-sense-emu-whc-election")


def driver_pid() -> int | None:
    """Pid in the emulator's lock file if that process is alive (0: being written), else None."""
    try:
        with open(lock_filename(), "rb") as f:
            text = f.readline().strip()
    except FileNotFoundError:
        return None
    try:
        pid = int(text)
    except ValueError:
        return 0 if not text else None  # empty: the holder is writing it right now
    return pid if pid_exists(pid) else None


@contextmanager
def _election() -> Iterator[None]:
    """Serialise driver elections between whc processes (the kernel drops the lock if one dies)."""
    fd = os.open(ELECTION_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _reset_environment() -> None:
    """Make the next Pressure/HumidityServer start from sense_emu's defaults (20 degC, 45 %RH, 1013 hPa).

    A server reuses the values it finds in the file, but PressureServer decodes its own temperature 5.5 degC
    too high (it encodes with offset 37 and decodes with 42.5), so each restart would warm temp_p by 5.5 degC.
    Zeroing the sensor-type byte makes the servers write fresh defaults instead.
    """
    for init in (init_pressure, init_humidity):
        with init() as f:
            f.seek(0)
            f.write(b"\x00")


def _settle(imu: IMUServer, timeout: float = 1.0) -> None:
    """Wait until the IMU simulation has warmed up (about 0.2 s).

    IMUServer starts its smoothing windows (10 samples of 16 ms) from zeros, so for the first ten samples
    acceleration and magnetic field ramp up from 0 to their real values (acc_z 0 -> 1 g).
    """
    deadline = time.monotonic() + timeout
    while float(np.linalg.norm(imu.accel)) < SETTLED_G and time.monotonic() < deadline:
        time.sleep(0.01)


class _Driver:
    """Process-wide: keeps the emulator driven while at least one back end uses it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._users = 0
        self._lock = EmulatorLock("whc")
        self._servers: list[Any] = []
        self._stop: threading.Event | None = None
        self._warned = False

    @property
    def driving(self) -> bool:
        """True if this process runs the simulation."""
        return bool(self._servers)

    def acquire(self) -> None:
        """Register a user; make sure the emulator is driven (OSError if that is impossible)."""
        with self._guard:
            if self._users == 0:
                self._ensure_driven()
                stop = self._stop = threading.Event()
                threading.Thread(target=self._watch, args=(stop,), name="whc-emu-driver", daemon=True).start()
            self._users += 1

    def release(self) -> None:
        """Unregister a user; the last one stops the simulation (another process may then take over)."""
        with self._guard:
            self._users -= 1
            if self._users > 0:
                return
            if self._stop is not None:
                self._stop.set()
                self._stop = None
            self._stop_servers()

    def shutdown(self) -> None:
        """At exit: stop driving even if back ends were not closed."""
        with self._guard:
            self._users = 0
            if self._stop is not None:
                self._stop.set()
            self._stop_servers()

    def _watch(self, stop: threading.Event) -> None:
        while not stop.wait(WATCH_INTERVAL):
            with self._guard:
                if stop.is_set():
                    return
                try:
                    self._ensure_driven()
                except Exception as e:
                    if not self._warned:
                        self._warned = True
                        log.warning("cannot drive the sense_emu simulation: %s", e)

    def _ensure_driven(self) -> None:
        if self._servers or driver_pid() is not None:
            return
        with _election():
            if driver_pid() is not None:
                return
            try:
                self._lock.acquire()  # removes a stale lock file, then creates it exclusively
            except FileExistsError:  # the GUI or sense_play got in first
                return
            try:
                _reset_environment()
                imu = IMUServer(simulate_world=True)
                self._servers.append(imu)
                self._servers.append(PressureServer(simulate_noise=True))
                self._servers.append(HumidityServer(simulate_noise=True))
                _settle(imu)
            except BaseException:
                self._stop_servers()
                raise
        log.info("driving the sense_emu simulation (lock %s, pid %d)", lock_filename(), os.getpid())

    def _stop_servers(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()  # stops its thread and unmaps the file
        if self._lock.mine:
            self._lock.release()


_driver = _Driver()
atexit.register(_driver.shutdown)


def acquire() -> None:
    """Make sure the emulated HAT is driven while the caller uses it; pair with release()."""
    _driver.acquire()


def release() -> None:
    _driver.release()


def driving() -> bool:
    """True if this process currently runs the simulation."""
    return _driver.driving

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
- otherwise this process takes the lock and runs the three servers; when the driving sender stops, the
  others notice at their next failed IMU read (or within 0.25 s, by a watchdog thread) and one takes over;
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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sense_emu.humidity import HumidityServer
from sense_emu.imu import IMUServer
from sense_emu.lock import EmulatorLock, lock_filename, pid_exists
from sense_emu.pressure import PressureServer

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.25  # seconds between checks that someone still drives the emulator
# sense_emu's world at rest: level, facing north (IMUServer's gravity and north), in g and gauss
AT_REST = {
    "accel": (0.0, 0.0, 1.0),
    "gyro": (0.0, 0.0, 0.0),
    "compass": (0.33, 0.0, 0.0),
    "orientation": (0, 0, 0),
}
PRESSURE_DEFAULTS = (1013.0, 20.0)  # hPa, degC: PressureServer's own defaults
HUMIDITY_DEFAULTS = (45.0, 20.0)  # %RH, degC: HumidityServer's own defaults
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
    fd = os.open(ELECTION_FILE, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class _QuietStart:
    """Mixin: no provisional writes while the file already holds a published sample.

    Other senders may be reading it. The stock constructors publish provisional values (IMUServer an
    all-zero sample), so the subclass holds them back and publishes its first real sample itself. The stock
    close() publishes one last sample, all zeros again for an IMUServer stopped within 16 ms of its start.
    """

    SENSOR_TYPE = 0  # value of the file's type byte once a server has initialised it
    _quiet = False

    def _write(self, value: Any) -> None:
        if self._quiet and self._read().type == self.SENSOR_TYPE:
            return
        super()._write(value)

    def close(self) -> None:
        self._quiet = True
        super().close()


class _RestingIMUServer(_QuietStart, IMUServer):
    """IMUServer that starts at rest (level, facing north) instead of from zeros.

    The stock one smooths over its last 10 samples starting from zeros, so for 0.16 s acceleration and
    magnetic field ramp up from 0 (acc_z 0 -> 1 g): wrong rows for every sender reading the emulator.
    Here the smoothing windows start full of the resting state.
    """

    SENSOR_TYPE = 6

    def __init__(self) -> None:
        self._quiet = True
        super().__init__(simulate_world=False)
        self._quiet = False
        self.set_imu_values(**AT_REST)  # one direct write
        for window, value in (
            (self._accels, self.accel),
            (self._gyros, self.gyro),
            (self._comps, self.compass),
        ):
            window[:] = value
        # The world model (started by the constructor) yields zeros for its first 16 ms; the thread's first
        # step comes 16 ms after this, so it never sees them. No pause here: readers poll every 10 ms.
        self.simulate_world = True


class _RestingPressureServer(_QuietStart, PressureServer):
    """PressureServer that starts from sense_emu's defaults (1013 hPa, 20 degC).

    The stock one continues from the values in the file, but decodes the temperature 5.5 degC too high
    (it encodes with offset 37 and decodes with 42.5): every restart would warm temp_p by 5.5 degC.
    """

    SENSOR_TYPE = 3

    def __init__(self) -> None:
        self._quiet = True
        super().__init__(simulate_noise=False)
        self._quiet = False
        self.set_values(*PRESSURE_DEFAULTS)  # one direct write
        self._pressures[:] = self.pressure
        self._temperatures[:] = self.temperature
        self.simulate_noise = True


class _RestingHumidityServer(_QuietStart, HumidityServer):
    """HumidityServer that starts from sense_emu's defaults (45 %RH, 20 degC).

    The stock one continues from the last smoothed (noisy) value, a random walk over restarts.
    """

    SENSOR_TYPE = 2

    def __init__(self) -> None:
        self._quiet = True
        super().__init__(simulate_noise=False)
        self._quiet = False
        self.set_values(*HUMIDITY_DEFAULTS)
        self._humidities[:] = self.humidity
        self._temperatures[:] = self.temperature
        self.simulate_noise = True


def _start_servers() -> list[Any]:
    """Start the IMU, pressure and humidity simulations (stock servers if sense_emu's internals differ)."""
    servers: list[Any] = []
    try:
        for resting, stock in (
            (_RestingIMUServer, IMUServer),
            (_RestingPressureServer, PressureServer),
            (_RestingHumidityServer, HumidityServer),
        ):
            try:
                servers.append(resting())
            except AttributeError as e:
                log.warning("sense_emu internals differ (%s): %s starts with a warm-up", e, stock.__name__)
                servers.append(stock())
    except BaseException:
        for server in servers:
            server.close()
        raise
    return servers


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

    def rescue(self) -> bool:
        """Take over at once if nobody drives the emulator (an IMU read just failed); True if we did."""
        with self._guard:
            return self._users > 0 and self._try_drive()

    def _watch(self, stop: threading.Event) -> None:
        while not stop.wait(WATCH_INTERVAL):
            with self._guard:
                if stop.is_set():
                    return
                self._try_drive()

    def _try_drive(self) -> bool:
        try:
            return self._ensure_driven()
        except Exception as e:
            if not self._warned:
                self._warned = True
                log.warning("cannot drive the sense_emu simulation: %s", e)
            return False

    def _ensure_driven(self) -> bool:
        """Start driving if nobody does; True if this call started the simulation."""
        if self._servers or driver_pid() is not None:
            return False
        with _election():
            if driver_pid() is not None:
                return False
            try:
                self._lock.acquire()  # removes a stale lock file, then creates it exclusively
            except FileExistsError:  # the GUI or sense_play got in first
                return False
            try:
                self._servers = _start_servers()
            except BaseException:
                self._stop_servers()
                raise
        log.info("driving the sense_emu simulation (lock %s, pid %d)", lock_filename(), os.getpid())
        return True

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


def rescue() -> bool:
    """Called when an IMU read failed: take over now if the driving process went away; True if we did."""
    return _driver.rescue()


def driving() -> bool:
    """True if this process currently runs the simulation."""
    return _driver.driving

"""The official Sense HAT emulator, ``sense_emu`` (same API as ``sense_hat``); works headless.

If no emulator GUI (or other driver) is running, this process runs sense_emu's sensor simulation itself;
see ``_emu_sim`` for where the emulated HAT lives and how several senders on one machine share it.
"""

from __future__ import annotations

from ...exc import SensorError, one_line
from . import SensorOptions
from .sensehat_api import SenseHatAPIBackend


class EmulatorBackend(SenseHatAPIBackend):
    """The emulated Sense HAT shared by all emulated senders on this machine."""

    name = "emulator"

    def __init__(self, groups: frozenset[str], options: SensorOptions | None = None) -> None:
        try:
            import sense_emu

            from . import _emu_sim
        except ImportError:
            raise SensorError("sense-emu is not installed in this Python: bash scripts/demo.sh sets up .venv "
                              "with it; then run .venv/bin/python launch_sender.py --emulator") from None
        try:
            _emu_sim.acquire()
        except OSError as e:
            raise SensorError(f"cannot start the sense_emu simulation: {one_line(e)}") from None
        self._sim = _emu_sim
        try:
            sense = sense_emu.SenseHat()
            super().__init__(sense, groups, options)
        except Exception as e:
            _emu_sim.release()
            if isinstance(e, SensorError):
                raise
            raise SensorError(f"sense_emu unusable: {one_line(e)}") from None

    def _recover_imu(self) -> bool:
        return self._sim.rescue()  # the sender that drove the emulator stopped: take over now

    def close(self) -> None:
        if not self._closed:
            super().close()
            self._sim.release()

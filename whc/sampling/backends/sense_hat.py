"""Real hardware, through the ``sense_hat`` library (Raspberry Pi OS: ``sudo apt install sense-hat``)."""

from __future__ import annotations

from whc.exc import SensorError
from whc.sampling.backends._sensehat_api import SenseHatAPIBackend, _one_line

_NO_HAT_FIX = ("on a machine without one, run with --emulator "
               "(it needs sense-emu: bash scripts/demo.sh sets up .venv with it)")


class SenseHatBackend(SenseHatAPIBackend):
    """The Sense HAT on this Pi."""

    name = "sense_hat"

    def __init__(self, groups: frozenset[str]) -> None:
        try:
            import sense_hat
        except ImportError as e:  # also when its RTIMU extension is missing
            raise SensorError(
                f"no Sense HAT found (sense_hat library not importable: {_one_line(e)}); "
                f"on a Pi: sudo apt install sense-hat; {_NO_HAT_FIX}"
            ) from None
        try:
            sense = sense_hat.SenseHat()
        except Exception as e:  # OSError without framebuffer or I2C; others from the C extension
            raise SensorError(
                f"no Sense HAT found (sense_hat library: {_one_line(e)}); check the HAT is seated and I2C "
                f"is enabled (raspi-config); {_NO_HAT_FIX}"
            ) from None
        super().__init__(sense, groups)

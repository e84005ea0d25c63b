"""Real hardware, through the ``sense_hat`` library (Raspberry Pi OS: ``sudo apt install sense-hat``)."""

from __future__ import annotations

from typing import Any

from ...exc import SensorError, one_line
from . import SensorOptions
from .sensehat_api import SenseHatAPIBackend

_NO_HAT_FIX = ("on a machine without one, run with --emulator "
               "(it needs sense-emu: bash scripts/demo.sh sets up .venv with it)")


class SenseHatBackend(SenseHatAPIBackend):
    """The Sense HAT on this Pi."""

    name = "sense_hat"

    def __init__(self, groups: frozenset[str], options: SensorOptions | None = None) -> None:
        try:
            import sense_hat
        except ImportError as e:  # also when its RTIMU extension is missing
            raise SensorError(
                f"no Sense HAT found (sense_hat library not importable: {one_line(e)}); "
                f"on a Pi: sudo apt install sense-hat; {_NO_HAT_FIX}"
            ) from None
        try:
            sense = sense_hat.SenseHat()
        except Exception as e:  # OSError without framebuffer or I2C; others from the C extension
            raise SensorError(
                f"no Sense HAT found (sense_hat library: {one_line(e)}); check the HAT is seated and I2C "
                f"is enabled (raspi-config); {_NO_HAT_FIX}"
            ) from None
        super().__init__(sense, groups, options)

    def _make_colour_sensor(self) -> Any:
        """The library's SenseHat() makes the colour sensor but swallows why it could not (smbus missing, no
        sensor on I2C, I2C off); making one here raises that reason."""
        from sense_hat.colour import ColourSensor

        return ColourSensor()

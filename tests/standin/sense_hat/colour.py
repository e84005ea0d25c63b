"""Stand-in for ``sense_hat.colour``: the ColourSensor's settable gain and integration cycles, and raw counts."""

from __future__ import annotations

import os


class ColourSensorInitialisationError(Exception):
    pass


class InvalidGainError(Exception):
    pass


class _Interface:
    def __init__(self, tcs3400: bool) -> None:
        self.GAIN_VALUES = (1, 4, 16, 64) if tcs3400 else (1, 4, 16, 60)  # noqa: N806
        self.CLOCK_STEP = 0.00275 if tcs3400 else 0.0024  # noqa: N806


class ColourSensor:
    def __init__(self, gain: int = 1, integration_cycles: int = 1) -> None:
        faults = set(os.environ.get("WHC_STANDIN_FAULTS", "").split(","))
        if "no_smbus" in faults:
            raise ModuleNotFoundError("No module named 'smbus'", name="smbus")
        if "colour_unreachable" in faults:
            raise ColourSensorInitialisationError("Failed to initialise colour sensor. (Sensor not present)")
        self.interface = _Interface("tcs3400" in faults)
        self._gain = 1
        self.gain = gain
        self.integration_cycles = integration_cycles

    @property
    def gain(self) -> int:
        return self._gain

    @gain.setter
    def gain(self, gain: int) -> None:
        if gain not in self.interface.GAIN_VALUES:
            raise InvalidGainError(f"Cannot set gain to '{gain}'. Values: {self.interface.GAIN_VALUES}")
        self._gain = gain

    @property
    def integration_time(self) -> float:
        return self.integration_cycles * self.interface.CLOCK_STEP

    @property
    def max_raw(self) -> int:
        return 65535 if self.integration_cycles >= 64 else 1024 * self.integration_cycles

    @property
    def colour_raw(self) -> tuple[int, int, int, int]:
        return (100 * self._gain, 200 * self._gain, 300 * self._gain, 600 * self._gain)

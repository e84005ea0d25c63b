"""Sensor back ends, one module per source of readings (modelled on gpiozero's ``pins/``).

The back end is always named explicitly ("sense_hat" or "emulator"); nothing is guessed and there is no
silent fallback to fake data. Its module is imported only when it is chosen.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...columns import SENSOR_COLUMNS, SENSOR_GROUPS, columns_of
from ...exc import ConfigError

# name -> "module:class", imported lazily by open_backend()
BACKENDS: dict[str, str] = {
    "sense_hat": "whc.sampling.backends.sense_hat:SenseHatBackend",
    "emulator": "whc.sampling.backends.emulator:EmulatorBackend",
}
# back ends whose HAT one process must own (whc.sampling.hatlock); the emulated HAT is shared by design
MACHINE_WIDE_LOCK = frozenset({"sense_hat"})


@dataclass(frozen=True)
class SensorOptions:
    """Settings of the sensors themselves (config keys of the same names)."""

    colour_gain: int = 16
    colour_integration_cycles: int = 64

    @classmethod
    def from_settings(cls, settings: Mapping[str, object]) -> SensorOptions:
        return cls(**{k: settings[k] for k in cls.__dataclass_fields__ if k in settings})  # type: ignore[arg-type]


class SensorBackend(ABC):
    """One source of readings; ``read()`` returns one sample of the configured sensor groups."""

    name: str  # "sense_hat" | "emulator"
    groups: frozenset[str]  # configured sensor groups, from ...columns.SENSOR_GROUPS
    columns: tuple[str, ...]  # the keys of every read(), in whc.columns order
    imu_failures: int  # rows whose IMU fields stayed empty (no fresh sample)

    @abstractmethod
    def read(self, follow: bool = False) -> dict[str, float | None]:
        """One sample: every column of the configured groups, a value or None.

        ``follow``: take the IMU sample after the one the last read took (waiting for it), so that consecutive
        reads use every IMU sample once; otherwise the newest.
        """

    def counters(self) -> dict[str, int]:
        """Counts for the stats line and the health report: IMU samples seen, skipped, repeated, failures."""
        return {"imu_failures": self.imu_failures}

    @abstractmethod
    def close(self) -> None:
        """Release the hardware (idempotent)."""

    @property
    @abstractmethod
    def sense(self) -> Any:
        """The underlying SenseHat object (for the LED display), or None if not available."""

    def __enter__(self) -> SensorBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_groups(groups: Sequence[str]) -> frozenset[str]:
    """The groups as a frozenset; ConfigError names any unknown one."""
    unknown = sorted(set(groups) - set(SENSOR_GROUPS))
    if unknown:
        choices = ", ".join(SENSOR_GROUPS)
        raise ConfigError(f"unknown sensor group(s) {', '.join(unknown)}; choose from {choices}")
    return frozenset(groups)


def columns_for(groups: frozenset[str]) -> tuple[str, ...]:
    """Column names the groups fill, in whc.columns order."""
    wanted = {name for group in groups for name in columns_of(group)}
    return tuple(name for name in SENSOR_COLUMNS if name in wanted)


def open_backend(name: str, groups: Sequence[str], options: SensorOptions | None = None) -> SensorBackend:
    """Open the back end called ``name`` reading ``groups``.

    ConfigError for an unknown name or group; SensorError (one line naming the fix) if the source is unusable.
    """
    target = BACKENDS.get(name)
    if target is None:
        raise ConfigError(f"unknown sensor back end {name!r}; choose one of: {', '.join(BACKENDS)}")
    checked = check_groups(groups)
    module_name, class_name = target.split(":")
    backend_class = getattr(importlib.import_module(module_name), class_name)
    return backend_class(checked, options or SensorOptions())

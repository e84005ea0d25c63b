"""Every exception the package raises, in one place."""

from __future__ import annotations


class WhcError(Exception):
    """Base class of all whc errors."""


class ConfigError(WhcError):
    """A configuration file or value is unusable; the message names file, key and fix."""


class ProtocolError(WhcError):
    """A line from a client breaks the wire protocol; the message is the one-line reason."""


class LineTooLong(ProtocolError):
    """A line exceeded ``max_line_bytes``; the connection is closed after it."""


class StorageError(WhcError):
    """A sink could not make readings durable (disk full, read-only file system...)."""


class SensorError(WhcError):
    """No usable sensor source (no Sense HAT, emulator not installed...)."""


class SensorReadError(SensorError):
    """One read of a sensor failed; the fields it should have filled are left empty."""


class HatBusy(SensorError):
    """Another process holds the Sense HAT; the message names it."""


class NoColourSensor(SensorError):
    """The sensor source has no colour sensor at all (the emulator): a failure never retried."""

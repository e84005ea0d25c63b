"""Every exception the package raises, in one place (and how to show one in a single line)."""

from __future__ import annotations


class WhcError(Exception):
    """Base class of all whc errors."""


class ConfigError(WhcError):
    """A configuration file or value is unusable; the message names file, key and fix."""


class ProtocolError(WhcError):
    """A line from a client breaks the wire protocol; the message is the one-line reason."""


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


class ServerGone(WhcError):
    """The sender's connection to the server is unusable; the forwarder reconnects."""


class ReportError(WhcError):
    """A file given to the report cannot be read as a whc CSV; the message names it."""


def one_line(error: BaseException | str) -> str:
    """An error as one line (libpq's and RTIMULib's messages span several); its type if it has no text."""
    text = " ".join(str(error).split())
    return text or (type(error).__name__ if isinstance(error, BaseException) else "")

"""Line parsers: one received line in, a validated reading out, chosen by ``parser`` in server.json.

Every parser gives exactly what the standard-library reference gives for the same line
(``protocol.parse_reading(protocol.decode_line(line))``): the same reading, hence byte-identical
rows, and the same ``ProtocolError`` reason for a line it refuses. They differ only in speed.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod

from ..exc import ConfigError
from ..protocol import Reading
from .runs import Run

PARSERS = {  # name in server.json -> "module:Class"
    "stdlib": "whc.parsers.stdlib:StdlibParser",
    "msgspec": "whc.parsers.msgspec:MsgspecParser",
}
AUTO = ("msgspec", "stdlib")  # what "auto" tries, in order: the first that imports
CHOICES = ("auto", *PARSERS)


class Parser(ABC):
    """Turns a line (bytes, without its newline) into a reading, or raises ``ProtocolError``.

    ``parse_many`` takes the plain lines that begin a received chunk at once, and ``parse_run`` a
    whole block of lines that is a plain run (see ``runs``)."""

    name: str

    @abstractmethod
    def parse(self, line: bytes, recv_time: str, src_ip: str) -> Reading:
        """The validated reading of one line, or ``ProtocolError`` with the one-line reason."""

    @abstractmethod
    def parse_many(self, lines: list[bytes], recv_time: str, src_ip: str) -> list[Reading]:
        """The readings of the leading ``lines`` that are plainly valid, taken fast (all, in the common case).

        The caller gives the lines after them to ``parse``, one by one, which words any refusal."""

    @abstractmethod
    def parse_run(self, block: bytes, recv_time: str, src_ip: str) -> Run | None:
        """The run that ``block`` (whole lines, each ending in a newline) is, or None if it is not plainly one.

        None says nothing about the lines: the caller takes them one by one."""

    def describe(self) -> str:
        """Which parser this is, for the log."""
        return self.name


def load(name: str) -> Parser:
    """The parser ``name`` from ``PARSERS``; ImportError if what it needs is not installed."""
    module, cls = PARSERS[name].split(":")
    return getattr(importlib.import_module(module), cls)()


def choose(setting: str) -> Parser:
    """The parser for the ``parser`` setting; ConfigError if an explicitly chosen one cannot load."""
    if setting == "auto":
        for name in AUTO:
            try:
                return load(name)
            except ImportError:
                continue
    try:
        return load(setting)
    except ImportError as exc:
        raise ConfigError(f"key 'parser': {setting!r} needs {exc.name or 'a module that is not installed'}: "
                          f"install it (pip install -r requirements-fast.txt) or set parser to \"auto\" or "
                          f"\"stdlib\"") from None

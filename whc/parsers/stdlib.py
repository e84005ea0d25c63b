"""The standard-library parser: json with numbers kept as text, the common case validated fast."""

from __future__ import annotations

import json

from .. import protocol
from ..protocol import Reading
from . import Parser
from .plain import finish


def reference(line: bytes, recv_time: str, src_ip: str) -> Reading:
    """The reference every parser matches: ``protocol``'s own decode and validation."""
    return protocol.parse_reading(protocol.decode_line(line), recv_time, src_ip)


def _no_constant(name: str) -> None:
    raise ValueError(name)


# Every number as its text (a plain str: cheaper than protocol's Number; plain.finish tells them apart).
_scan_object = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=_no_constant).scan_once


def _plain(line: bytes, recv_time: str, src_ip: str) -> Reading | None:
    """The reading of a line that is one plain object (see ``plain``), else None."""
    try:
        text = line.decode("utf-8")
        obj, end = _scan_object(text, 0) if text[:1] == "{" else (None, 0)
    except Exception:  # noqa: BLE001 - whatever the scan refuses, the reference judges (and words)
        return None
    if end != len(text) or obj.__class__ is not dict:
        return None
    return finish(obj, line, recv_time, src_ip)


class StdlibParser(Parser):
    """Standard library only (always available)."""

    name = "stdlib"

    @staticmethod
    def parse(line: bytes, recv_time: str, src_ip: str) -> Reading:
        reading = _plain(line, recv_time, src_ip)
        return reading if reading is not None else reference(line, recv_time, src_ip)

    def parse_many(self, lines: list[bytes], recv_time: str, src_ip: str) -> list[Reading]:
        readings = []
        for line in lines:
            reading = _plain(line, recv_time, src_ip)
            if reading is None:
                break
            readings.append(reading)
        return readings

    def describe(self) -> str:
        return "stdlib (standard library only)"

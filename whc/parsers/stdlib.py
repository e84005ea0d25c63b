"""The standard-library parser: json with numbers kept as text, the common case validated fast."""

from __future__ import annotations

import json

from .. import protocol
from ..protocol import Number, Reading
from . import Parser
from .plain import finish


def reference(line: bytes, recv_time: str, src_ip: str) -> Reading:
    """The reference every parser matches: ``protocol``'s own decode and validation."""
    return protocol.parse_reading(protocol.decode_line(line), recv_time, src_ip)


def _no_constant(name: str) -> None:
    raise ValueError(name)


# protocol's decoder without its wrapping: one object that is the whole line, else the reference decides
_scan_object = json.JSONDecoder(parse_float=Number, parse_int=Number, parse_constant=_no_constant).scan_once


class StdlibParser(Parser):
    """Standard library only (always available)."""

    name = "stdlib"

    @staticmethod
    def parse(line: bytes, recv_time: str, src_ip: str) -> Reading:
        text = ""
        try:
            text = line.decode("utf-8")
            obj, end = _scan_object(text, 0) if text[:1] == "{" else (None, 0)
        except Exception:  # noqa: BLE001 - whatever the scan refuses, the reference judges (and words)
            obj, end = None, 0
        if end != len(text) or type(obj) is not dict:
            return reference(line, recv_time, src_ip)
        reading = finish(obj, line, recv_time, src_ip)  # obj is what protocol.decode_line returns for line
        return reading if reading is not None else protocol.parse_reading(obj, recv_time, src_ip)

    def describe(self) -> str:
        return "stdlib (standard library only)"

"""The msgspec parser (optional: pip install -r requirements-fast.txt): a C JSON decoder for the common case.

Floats come back as their text (``float_hook``), ints as ints; ``plain.finish`` validates the common
case. Any line msgspec refuses, or that is not plainly valid, goes to the standard-library parser,
so the result, or the reason for refusing, is always the reference's.
"""

from __future__ import annotations

import msgspec

from ..protocol import Reading
from . import Parser
from .plain import finish
from .stdlib import StdlibParser


class MsgspecParser(Parser):
    """msgspec's JSON decoder in front of the standard-library parser."""

    name = "msgspec"

    def __init__(self) -> None:
        self._decode = msgspec.json.Decoder(float_hook=str).decode

    def describe(self) -> str:
        return f"msgspec {msgspec.__version__} (lines it does not take plainly go to the stdlib parser)"

    def _plain(self, line: bytes, recv_time: str, src_ip: str) -> Reading | None:
        try:
            obj = self._decode(line)
        except Exception:  # noqa: BLE001 - whatever msgspec refuses, the reference judges
            return None
        return finish(obj, line, recv_time, src_ip) if obj.__class__ is dict else None

    def parse(self, line: bytes, recv_time: str, src_ip: str) -> Reading:
        reading = self._plain(line, recv_time, src_ip)
        return reading if reading is not None else StdlibParser.parse(line, recv_time, src_ip)

    def parse_many(self, lines: list[bytes], recv_time: str, src_ip: str) -> list[Reading] | None:
        decode = self._decode
        readings = []
        for line in lines:
            try:
                obj = decode(line)
            except Exception:  # noqa: BLE001 - a line msgspec refuses: each line goes through parse instead
                return None
            reading = finish(obj, line, recv_time, src_ip) if obj.__class__ is dict else None
            if reading is None:
                return None
            readings.append(reading)
        return readings

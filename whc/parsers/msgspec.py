"""The msgspec parser (optional: pip install -r requirements-fast.txt): a C JSON decoder for the common case.

Floats come back as their text (``float_hook``), ints as ints; ``plain.finish`` validates the common
case. Any line msgspec refuses, or that is not plainly valid, goes to the reference (``protocol``),
so the result, or the reason for refusing, is always the reference's.
"""

from __future__ import annotations

import msgspec

from ..protocol import Reading
from . import Parser
from .plain import finish
from .stdlib import reference


class MsgspecParser(Parser):
    """msgspec's JSON decoder in front of the reference."""

    name = "msgspec"

    def __init__(self) -> None:
        self._decode = msgspec.json.Decoder(float_hook=str).decode

    def describe(self) -> str:
        return f"msgspec {msgspec.__version__} (lines it does not take plainly go to the reference)"

    def _plain(self, line: bytes, recv_time: str, src_ip: str) -> Reading | None:
        try:
            obj = self._decode(line)
        except Exception:  # noqa: BLE001 - whatever msgspec refuses, the reference judges
            return None
        return finish(obj, line, recv_time, src_ip) if obj.__class__ is dict else None

    def parse(self, line: bytes, recv_time: str, src_ip: str) -> Reading:
        reading = self._plain(line, recv_time, src_ip)
        return reading if reading is not None else reference(line, recv_time, src_ip)

    def parse_many(self, lines: list[bytes], recv_time: str, src_ip: str) -> list[Reading]:
        decode = self._decode
        readings = []
        for line in lines:
            try:
                obj = decode(line)
            except Exception:  # noqa: BLE001 - a line msgspec refuses: it and the rest go through parse
                break
            reading = finish(obj, line, recv_time, src_ip) if obj.__class__ is dict else None
            if reading is None:
                break
            readings.append(reading)
        return readings

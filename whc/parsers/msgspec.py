"""The msgspec parser (optional: pip install -r requirements-fast.txt): a C JSON decoder for the common case.

Floats come back as their text (``float_hook``), ints as ints; ``plain.finish`` validates the common
case. Any line msgspec refuses, or that is not plainly valid, goes to the standard-library parser,
so the result, or the reason for refusing, is always the reference's.
"""

from __future__ import annotations

import msgspec

from ..protocol import Number, Reading
from . import Parser
from .plain import finish
from .stdlib import StdlibParser


class MsgspecParser(Parser):
    """msgspec's JSON decoder in front of the standard-library parser."""

    name = "msgspec"

    def __init__(self) -> None:
        self._decode = msgspec.json.Decoder(float_hook=Number).decode

    def describe(self) -> str:
        return f"msgspec {msgspec.__version__} (lines it does not take plainly go to the stdlib parser)"

    def parse(self, line: bytes, recv_time: str, src_ip: str) -> Reading:
        try:
            obj = self._decode(line)
        except Exception:  # noqa: BLE001 - whatever msgspec refuses, the reference judges
            obj = None
        if type(obj) is dict:
            reading = finish(obj, line, recv_time, src_ip, ints=True)
            if reading is not None:
                return reading
        return StdlibParser.parse(line, recv_time, src_ip)

"""The msgspec parser (optional: pip install -r requirements-fast.txt): a C JSON decoder for the common case.

Floats come back as their text (``float_hook``), ints as ints; ``plain.finish`` validates the common
case. Any line msgspec refuses, or that is not plainly valid, goes to the reference (``protocol``),
so the result, or the reason for refusing, is always the reference's. A run (``parse_run``) is
decoded into typed structs, and its sensor columns are cut from the block's own text
(``runs.as_written``) or, for a block written some other way, joined from the bytes of each value.
"""

from __future__ import annotations

from operator import attrgetter

import msgspec
from msgspec import UNSET, Raw, UnsetType

from ..columns import SENSOR_COLUMNS
from ..protocol import SEQ_LIMIT, Reading
from . import Parser
from .plain import finish
from .runs import Run, Sensors, as_written, check_times, make_run, one_id, one_per_line, plain_numbers
from .stdlib import reference

_NOT_SENT = Raw(b"")  # a sensor value no JSON text can give: the key was not sent

# The client keys of a reading, with sensor values kept as the bytes sent (Raw), for runs. Unknown
# keys (a hello, a status line, extra fields) make msgspec refuse the line, and the block goes line by line.
_RunReading = msgspec.defstruct(
    "_RunReading",
    [("sh_id", str), ("time", str | UnsetType, UNSET)]
    + [(column, Raw, _NOT_SENT) for column in SENSOR_COLUMNS]
    + [("seq", int | UnsetType, UNSET), ("session", str | UnsetType, UNSET)],
    forbid_unknown_fields=True, gc=False)
_SH_IDS, _TIMES, _SEQS, _SESSIONS = (attrgetter(key) for key in ("sh_id", "time", "seq", "session"))
_SENSORS = attrgetter(*SENSOR_COLUMNS)


class MsgspecParser(Parser):
    """msgspec's JSON decoder in front of the reference."""

    name = "msgspec"

    def __init__(self) -> None:
        self._decode = msgspec.json.Decoder(float_hook=str).decode
        self._decode_run = msgspec.json.Decoder(_RunReading).decode_lines

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

    def parse_run(self, block: bytes, recv_time: str, src_ip: str) -> Run | None:
        if not block.isascii():  # (msgspec does not check the UTF-8 of a value a later copy of its key replaces)
            return None
        try:
            readings = self._decode_run(block)
        except Exception:  # noqa: BLE001 - whatever msgspec refuses, the lines' own way judges
            return None
        count = len(readings)
        if not count:
            return None
        sh_id = one_id(set(map(_SH_IDS, readings)))
        if sh_id is None:
            return None
        times = list(map(_TIMES, readings))
        time_sent = times[0] is not UNSET
        if not time_sent and times.count(UNSET) == count:
            times = [recv_time] * count  # no time sent: the receive time is the reading's
        elif not check_times(times):
            return None
        seqs = list(map(_SEQS, readings))
        session = None
        if seqs[0] is UNSET:
            if seqs.count(UNSET) != count or set(map(_SESSIONS, readings)) != {UNSET}:
                return None
            seqs = None
        else:
            session = one_id(set(map(_SESSIONS, readings)))
            first = seqs[0]
            if session is None or first.__class__ is not int or seqs != list(range(first, first + count)) \
                    or first < 0 or first + count > SEQ_LIMIT:
                return None
        sent = [(column, bytes(value)) for column, value in zip(SENSOR_COLUMNS, _SENSORS(readings[0]), strict=True)
                if value]
        sensors = as_written(block, count, times[0] if time_sent else None, sh_id, sent, session, seqs)
        if sensors is None:  # not to be cut from the text (see as_written): each reading's values are joined
            if not one_per_line(block, count):
                return None
            joined = b"\n".join([b",".join(values) for values in map(_SENSORS, readings)])
            if not plain_numbers(joined):
                return None
            sensors = Sensors(joined.decode().split("\n"))
        # (make_run parses the first line by the reference, which refuses a seq 0 written -0)
        return make_run(self, block, sh_id, session, seqs, times, sensors, recv_time, src_ip)

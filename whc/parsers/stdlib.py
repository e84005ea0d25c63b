"""The standard-library parser: json with numbers kept as text, the common case validated fast."""

from __future__ import annotations

import json
from collections.abc import KeysView
from operator import itemgetter

from .. import protocol
from ..columns import SENSOR_COLUMNS
from ..protocol import SEQ_LIMIT, Reading
from . import Parser
from .plain import CLIENT_KEYS, finish
from .runs import (
    Run,
    Sensors,
    check_times,
    make_run,
    one_id,
    one_per_line,
    plain_numbers,
    sensor_text,
)


def reference(line: bytes, recv_time: str, src_ip: str) -> Reading:
    """The reference every parser matches: ``protocol``'s own decode and validation."""
    return protocol.parse_reading(protocol.decode_line(line), recv_time, src_ip)


def _no_constant(name: str) -> None:
    raise ValueError(name)


# Every number as its text (a plain str: cheaper than protocol's Number; plain.finish tells them apart).
_scan_object = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=_no_constant).scan_once


_SH_IDS, _TIMES, _SEQS, _SESSIONS = (itemgetter(key) for key in ("sh_id", "time", "seq", "session"))


def _decode_block(block: bytes) -> list | None:
    """The block's lines decoded as the items of one JSON array (a newline for each comma), numbers as
    text; None if that is not JSON. (``one_per_line`` then checks that each line was one item.)"""
    try:
        text = block.decode("utf-8")
        values, end = _scan_object("[" + text[:-1].replace("\n", ",") + "]", 0)
    except Exception:  # noqa: BLE001 - whatever the scan refuses, the lines' own way judges
        return None
    return values if end == len(text) + 1 and values.__class__ is list else None


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


def _seqs(objects: list[dict], keys: KeysView) -> tuple[list[int] | None, str | None]:
    """The consecutive seqs and the one session of a run (both None if none is sent); ValueError if not a run."""
    if "seq" not in keys and "session" not in keys:
        return None, None
    session = one_id(set(map(_SESSIONS, objects)))
    first = objects[0]["seq"]
    if session is None or first.__class__ is not str or not first.isdigit() or len(first) > 19:
        raise ValueError("not a run")
    seqs = list(range(int(first), int(first) + len(objects)))
    if seqs[-1] >= SEQ_LIMIT or list(map(_SEQS, objects)) != list(map(str, seqs)):
        raise ValueError("not a run")
    return seqs, session


def _sensor_columns(objects: list[dict], keys: KeysView) -> Sensors | None:
    """Each object's sensor columns as CSV text; None unless all are plain numbers."""
    present = [column for column in SENSOR_COLUMNS if column in keys]
    pad, template = sensor_text(present)
    if len(present) > 1:
        sensors = list(map(",".join, map(itemgetter(*present), objects)))
    elif present:
        sensors = list(map(itemgetter(present[0]), objects))
    else:
        return Sensors([template] * len(objects))  # (no sensor value at all)
    if not plain_numbers(",".join(sensors).encode()):
        return None
    if template is not None:
        return Sensors([template % tuple(values.split(",")) for values in sensors])
    return Sensors(sensors, trail=pad)


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

    def parse_run(self, block: bytes, recv_time: str, src_ip: str) -> Run | None:
        objects = _decode_block(block)
        if objects is None or not one_per_line(block, len(objects)) or objects[0].__class__ is not dict \
                or b"\\" in block:  # (no escapes: the quotes are counted below)
            return None
        count = len(objects)
        keys = objects[0].keys()
        try:
            # Every object has the first one's keys (as many, and each of them): none is missing or extra.
            if not keys <= CLIENT_KEYS or sum(map(len, objects)) != count * len(keys):
                return None
            sh_id = one_id(set(map(_SH_IDS, objects)))
            times = list(map(_TIMES, objects)) if "time" in keys else None
        except (KeyError, TypeError):  # TypeError: a null, an array or such among them, not an object
            return None
        if sh_id is None or times is not None and not check_times(times):
            return None
        try:
            seqs, session = _seqs(objects, keys)
            sensors = _sensor_columns(objects, keys)
        except (KeyError, TypeError, ValueError):  # a key missing, or a null, true or false among the values
            return None
        # Without escapes every quote opens or closes a key or a string. sh_id, session and time are
        # strings of forms no number's text takes, so a count that matches proves that every other value
        # is a number (as text): none is a JSON string.
        strings = 1 + ("time" in keys) + (session is not None)  # sh_id, and time and session if sent
        if sensors is None or block.count(b'"') != 2 * count * (len(keys) + strings):
            return None
        return make_run(self, block, sh_id, session, seqs, times or [recv_time] * count,  # (no time sent)
                        sensors, recv_time, src_ip)

    def describe(self) -> str:
        return "stdlib (standard library only)"

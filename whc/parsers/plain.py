"""The common case, validated fast: an object of known client keys with plain values.

``finish`` turns such an object into the reading ``protocol.parse_reading`` makes of it, or returns
None (and leaves the object as it was, except ints it turned into number text) for anything else,
so the caller runs the reference parser, which gives the reading or the reason for refusing it.
It never refuses a line itself: whatever is not plainly valid is left to the reference.
"""

from __future__ import annotations

import re
from typing import Any

from ..columns import SENSOR_COLUMNS
from ..exc import ProtocolError
from ..protocol import Number, Reading, parse_time, valid_id

_SENSOR = frozenset(SENSOR_COLUMNS)
_CLIENT = _SENSOR | {"time", "sh_id", "session", "seq"}
_SHORT_INT = 10**16  # ints of at most 17 characters need no further check (as in protocol)
_SEQ_LIMIT = 2**63
_CANONICAL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z\Z")
_CACHE_LIMIT = 65536
_ids: set[str] = set()  # sh_id and session values already found valid
_seconds: set[str] = set()  # "YYYY-MM-DDTHH:MM:SS" of canonical times already found valid


def finish(obj: dict[str, Any], line: bytes, recv_time: str, src_ip: str, ints: bool = False) -> Reading | None:
    """The reading of a plain object (what ``protocol.parse_reading`` returns for it), else None.

    ``line`` is the line ``obj`` was decoded from. Numbers are ``Number`` text, or ints if ``ints``
    (a decoder that makes ints, which cannot show ``-0``; ints that are sensor values become text).
    """
    if not obj.keys() <= _CLIENT:
        return None  # unknown keys (extra), server-set keys or a hello
    others = 0  # values that are neither a number's text nor null
    for value in obj.values():
        if type(value) is Number:
            if len(value) > 17 or "e" in value or "E" in value:
                return None  # protocol checks such a number further
        elif value is not None:
            others += 1
    sh_id = obj.get("sh_id")
    if type(sh_id) is not str or not _known_id(sh_id):
        return None
    strings = 1
    session = obj.get("session")
    seq = None
    if session is not None or "seq" in obj:
        if session is None or "seq" not in obj or type(session) is not str or not _known_id(session):
            return None
        strings += 1
        seq = obj["seq"]
        if type(seq) is Number:
            if not seq.isdigit():
                return None
            seq = int(seq)  # at most 17 digits: below 2**63
        elif type(seq) is int and ints and 0 <= seq < _SEQ_LIMIT and not (seq == 0 and b"-0" in line):
            strings += 1  # (an int, counted among the others)
        else:
            return None
    time = obj.get("time")
    if time is not None:
        if type(time) is not str or not _known_canonical_time(time):
            return None
        strings += 1
    if others != strings and not (ints and _sensor_ints_as_text(obj, line)):
        return None  # a sensor value that is a string, boolean, array or object
    # valid: from here on the object becomes the reading
    if seq is not None:
        obj["seq"] = seq
    if time is None:
        obj["time"] = recv_time
    obj["recv_time"] = recv_time
    obj["src_ip"] = src_ip
    return obj


def _sensor_ints_as_text(obj: dict[str, Any], line: bytes) -> bool:
    """Turn sensor values that are ints into their text; False if a sensor value is anything else."""
    if b"-0" in line:
        return False  # an int 0 may have been written -0
    for key, value in obj.items():
        if key in _SENSOR and value is not None and type(value) is not Number:
            if type(value) is not int or not -_SHORT_INT < value < 10 * _SHORT_INT:
                return False
            obj[key] = Number(value)
    return True


def _known_id(value: str) -> bool:
    if value in _ids:
        return True
    if not valid_id(value):
        return False
    if len(_ids) >= _CACHE_LIMIT:
        _ids.clear()
    _ids.add(value)
    return True


def _known_canonical_time(value: str) -> bool:
    """True if ``value`` is a valid time already in ``format_time`` form (so it is stored as it is)."""
    if _CANONICAL_TIME.match(value) is None:
        return False
    second = value[:19]  # the rest (six digits and Z) is valid in any valid second
    if second in _seconds:
        return True
    try:
        if parse_time(value) != value:
            return False
    except ProtocolError:
        return False
    if len(_seconds) >= _CACHE_LIMIT:
        _seconds.clear()
    _seconds.add(second)
    return True

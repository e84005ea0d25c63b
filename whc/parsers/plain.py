"""The common case, validated fast: an object of known client keys with plain values.

The fast decoders give every JSON number as its text, a plain ``str`` (ints may come as ``int``), so
a number and a string are told apart by the line itself: ``finish`` proves that the only JSON
strings in the line are ``time``, ``sh_id`` and ``session`` (each of a form no number text can
take), so every other ``str`` value is a number's text.

``finish`` turns such an object into the reading ``protocol.parse_reading`` makes of the line, or
returns None for anything else, so the caller runs the reference parser, which gives the reading or
the reason for refusing it. It never refuses a line itself.
"""

from __future__ import annotations

import re
from typing import Any

from ..columns import SENSOR_COLUMNS
from ..exc import ProtocolError
from ..protocol import JSON_NUMBER, MAX_NUMBER_CHARS, SEQ_LIMIT, Reading, number_fault, parse_time, valid_id

_SENSOR = frozenset(SENSOR_COLUMNS)
CLIENT_KEYS = _SENSOR | {"time", "sh_id", "session", "seq"}
_SHORT_INT = 10**16  # ints of at most 17 characters need no further check (as in protocol)
_CANONICAL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z\Z")
_TAIL = re.compile(r"\.[0-9]{6}Z\Z")  # what follows the seconds in a canonical time
_MINUS_ZERO = re.compile(rb"-0(?![.eE0-9])")  # an int written -0 somewhere in the line
_CACHE_LIMIT = 65536
_ids: set[str] = set()  # sh_id and session values found valid, none of which could be a number's text
_seconds: set[str] = set()  # "YYYY-MM-DDTHH:MM:SS" of canonical times already found valid


def finish(obj: dict[str, Any], line: bytes, recv_time: str, src_ip: str) -> Reading | None:
    """The reading of a plain object (what the reference returns for ``line``), else None.

    ``obj`` is ``line`` decoded with every number as its text (``str``), except that ints may be
    ``int`` (which cannot show ``-0``); ints that are sensor values become their text.
    """
    if not obj.keys() <= CLIENT_KEYS or b"\\" in line:
        return None  # unknown keys (extra), server-set keys, a hello, or escapes (quotes are counted below)
    sh_id = obj.get("sh_id")
    if sh_id.__class__ is not str or sh_id not in _ids and not _new_id(sh_id):
        return None
    string_count = 1  # JSON strings the line must hold: sh_id, and time and session if present
    session = obj.get("session")
    seq = None
    if session is not None or "seq" in obj:
        if session.__class__ is not str or session not in _ids and not _new_id(session):
            return None
        string_count += 1
        seq = obj.pop("seq", None)  # (put back below as an int, once the other values are checked)
        if seq.__class__ is str:  # a number's text (a JSON string would make the count below differ)
            if not seq.isdigit() or len(seq) > 18:
                return None
            seq = int(seq)  # at most 18 digits: below 2**63
        elif seq.__class__ is not int or not 0 <= seq < SEQ_LIMIT or seq == 0 and _MINUS_ZERO.search(line):
            return None
    time = obj.get("time")
    if time is not None:
        if time.__class__ is not str or _TAIL.match(time, 19) is None \
                or time[:19] not in _seconds and not _new_canonical_time(time):
            return None
        string_count += 1
    # Without escapes every quote in the line opens or closes a key or a string value. sh_id, session
    # and time are strings here that no number's text can equal, so a count that matches proves that
    # no other value is a JSON string and that no key is written twice.
    if line.count(b'"') != 2 * (len(obj) + (seq is not None) + string_count):
        return None
    # Every other value is then a number's text (or null, or an int). Checked all at once: text without
    # an exponent, of at most MAX_NUMBER_CHARS characters, is a number the reference stores as it is.
    values = obj.values()
    try:
        joined = "".join(values)
    except TypeError:  # a null or an int among them
        joined = "E"
    if "E" in joined or joined.count("e") != sh_id.count("e") + (session.count("e") if session else 0) \
            or max(map(len, values)) > MAX_NUMBER_CHARS:
        if not _values_one_by_one(obj, line, (time, sh_id, session)):
            return None
    # valid: from here on the object becomes the reading
    if seq is not None:
        obj["seq"] = seq
    if time is None:
        obj["time"] = recv_time
    obj["recv_time"] = recv_time
    obj["src_ip"] = src_ip
    return obj


def _values_one_by_one(obj: dict[str, Any], line: bytes, string_values: tuple[str | None, ...]) -> bool:
    """The values other than ``string_values`` (sh_id, session and time) are numbers the reference
    stores as they are, or null; sensor values that are ints become their text."""
    ints = False
    for value in obj.values():
        if value.__class__ is str:
            if value not in string_values and number_fault(value) is not None:
                return False  # a number that cannot be stored: the reference words why
        elif value is not None:
            ints = True  # an int, a boolean, an array or an object
    return not ints or _sensor_ints_as_text(obj, line)


def _sensor_ints_as_text(obj: dict[str, Any], line: bytes) -> bool:
    """Turn sensor values that are ints into their text; False if a sensor value is anything else."""
    for key, value in obj.items():
        if key in _SENSOR and value is not None and value.__class__ is not str:
            if value.__class__ is not int or not -_SHORT_INT < value < 10 * _SHORT_INT \
                    or value == 0 and _MINUS_ZERO.search(line) is not None:
                return False  # (an int 0 may have been written -0, which is kept as sent)
            obj[key] = str(value)
    return True


def known_id(value: str) -> bool:
    """An sh_id or session that is valid and of a form no number's text can take (remembered)."""
    return value in _ids or _new_id(value)


def known_second(second: str) -> bool:
    """A "YYYY-MM-DDTHH:MM:SS" that begins valid canonical times (remembered)."""
    return second in _seconds or _new_canonical_time(second + ".000000Z")


def _new_id(value: str) -> bool:
    """Check (and remember) an sh_id or session: valid, and not of a form a number's text can take."""
    if not valid_id(value) or value[0] in "0123456789" and JSON_NUMBER.match(value) is not None:
        return False
    if len(_ids) >= _CACHE_LIMIT:
        _ids.clear()
    _ids.add(value)
    return True


def _new_canonical_time(value: str) -> bool:
    """True if ``value`` is a valid time already in ``format_time`` form (so it is stored as it is)."""
    if _CANONICAL_TIME.match(value) is None:
        return False
    try:
        if parse_time(value) != value:
            return False
    except ProtocolError:
        return False
    if len(_seconds) >= _CACHE_LIMIT:
        _seconds.clear()
    _seconds.add(value[:19])  # the rest (six digits and Z) is valid in any valid second
    return True

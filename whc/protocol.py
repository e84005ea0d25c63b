"""Wire protocol v1: JSON Lines over TCP (see docs/protocol.md).

This module turns one received line into a validated reading (or a ``ProtocolError``
with a one-line reason) and encodes the server's replies. It does no I/O.

Numbers are kept as the text the client sent (``Number``, a ``str``): they are
validated but never converted, so what lands in storage is exactly what was sent,
and the hot path spends no time turning text into floats and back.

The rules a reading must keep are here and in docs/protocol.md; another parser must keep
them exactly: a sensor or extra value may also be a string that is exactly a JSON number
(``JSON_NUMBER``, stored as that text); ``time`` may be Unix seconds (``epoch_time``).
Framing of objects sent back to back is parser-independent (``whc.framing``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from . import clock
from .columns import NAMES, SENSOR_COLUMNS
from .exc import ProtocolError

VERSION = 1
MAX_NUMBER_CHARS = 40

Reading = dict[str, Any]


class Number(str):
    """A JSON number, as the text it was written in."""

    __slots__ = ()


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


DECODER = json.JSONDecoder(parse_float=Number, parse_int=Number, parse_constant=_no_constants)

ID_RULE = "1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit"
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_SENSOR = frozenset(SENSOR_COLUMNS)
_SERVER_SET = frozenset({"recv_time", "src_ip", "extra"})
_KNOWN = frozenset(NAMES)
SEQ_LIMIT = 2**63  # seq is below this (a signed 64-bit integer)
_valid_ids: set[str] = set()  # sh_id and session values already checked (bounded)

OK_LINE = b'{"ok": 1}\n'

# A string standing for a number must be exactly a JSON number (RFC 8259 grammar): no spaces, no "+",
# no leading zeros, no NaN or Infinity.
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = Decimal("0.000001")
_EPOCH_LIMIT = 253402300800 * 10**6  # microseconds from 1970 to 10000-01-01T00:00:00Z


def format_time(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds, the form every time column uses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> str:
    """The current time in the form of ``format_time`` (``whc.clock``'s, which tests can move)."""
    return format_time(clock.utc_datetime())


def valid_id(value: object) -> bool:
    """True if ``value`` may be a ``sh_id`` or ``session``."""
    return type(value) is str and _ID_RE.match(value) is not None


def decode_line(line: bytes) -> dict[str, Any]:
    """Decode one line (without its newline) into a JSON object."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"invalid UTF-8 at byte {exc.start}") from None
    try:
        obj = DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"invalid JSON: {_json_reason(exc)}") from None
    if type(obj) is not dict:
        raise ProtocolError(f"not a JSON object: got {_json_type(obj)}")
    return obj


def is_hello(obj: dict[str, Any]) -> bool:
    """True if a decoded first line is a hello rather than a reading."""
    return "hello" in obj


@dataclass(frozen=True)
class Hello:
    """A client's first line: what it asks for and who it says it is."""

    acks: bool
    sh_id: str | None
    token: str | None = field(default=None, repr=False)
    status: bool = False  # the client will send status lines (so a server that cannot count them refuses it)


def parse_hello(obj: dict[str, Any]) -> Hello:
    """Validate a hello (``{"hello": 1, "acks": true, "sh_id": "...", "token": "..."}``)."""
    if obj.get("hello") != str(VERSION) or type(obj.get("hello")) is not Number:
        raise ProtocolError(f"unsupported hello {_short(obj.get('hello'))}: this server speaks protocol 1")
    acks = obj.get("acks", False)
    if type(acks) is not bool:
        raise ProtocolError("hello: acks must be true or false")
    unknown = sorted(set(obj) - {"hello", "acks", "sh_id", "token", "status"})
    if unknown:
        raise ProtocolError(f"hello: unknown key {_short(unknown[0])}")
    sh_id = obj.get("sh_id")
    if sh_id is not None and not valid_id(sh_id):
        raise ProtocolError(f"hello: sh_id {_short(sh_id)} invalid: {ID_RULE}")
    token = obj.get("token")
    if token is not None and type(token) is not str:
        raise ProtocolError("hello: token must be a string")
    status = obj.get("status", False)
    if type(status) is not bool:
        raise ProtocolError("hello: status must be true or false")
    return Hello(acks, sh_id, token, status)


def encode_hello(acks: bool = True, sh_id: str | None = None, token: str | None = None,
                 status: bool = False) -> bytes:
    """The hello a client sends first."""
    hello: dict[str, Any] = {"hello": VERSION, "acks": acks}
    if sh_id is not None:
        hello["sh_id"] = sh_id
    if token is not None:
        hello["token"] = token
    if status:
        hello["status"] = True
    return (json.dumps(hello) + "\n").encode()


def parse_reading(obj: dict[str, Any], recv_time: str, src_ip: str) -> Reading:
    """Validate a decoded line as a reading; the object itself becomes the row to store.

    Sensor values stay ``Number`` text or None; ``seq`` becomes an int; ``time`` is
    normalised; unknown numeric keys move into ``extra`` (compact JSON).
    """
    extra: list[str] | None = None
    for key, value in obj.items():
        if key in _SENSOR:
            if value is not None:
                _check_number(key, value)
        elif key in _KNOWN:
            if key in _SERVER_SET:
                raise ProtocolError(f"{key} is set by the server, not the client")
        elif key == "hello":
            raise ProtocolError("hello is only allowed as the first line")
        else:
            if value is not None:
                _check_number(key, value)
            if "\x00" in key or not key.isprintable() and _unencodable(key):
                raise ProtocolError(f"key {_short(key)} has a NUL or an unpaired surrogate")
            if extra is None:
                extra = []
            extra.append(key)
    sh_id = obj.get("sh_id")
    if type(sh_id) is not str or sh_id not in _valid_ids:  # (a list or dict is not hashable)
        if sh_id is None:
            raise ProtocolError("sh_id missing")
        _check_id("sh_id", sh_id)
    session = obj.get("session")
    if session is not None or "seq" in obj:
        if session is None or "seq" not in obj:
            raise ProtocolError("session and seq must come together")
        if type(session) is not str or session not in _valid_ids:
            _check_id("session", session)
        obj["seq"] = _check_seq(obj["seq"])
    if extra is not None:
        obj["extra"] = "{" + ",".join(f"{json.dumps(k)}:{obj.pop(k) or 'null'}" for k in extra) + "}"
    time = obj.get("time")
    obj["time"] = recv_time if time is None else parse_time(time)
    obj["recv_time"] = recv_time
    obj["src_ip"] = src_ip
    return obj


def parse_time(value: object) -> str:
    """Normalise a client's time to ``format_time`` form: ISO 8601 with a UTC offset, or Unix seconds."""
    if type(value) is Number:
        return epoch_time(value)
    if type(value) is not str:
        raise ProtocolError(f"time must be an ISO 8601 string or Unix seconds, got {_json_type(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ProtocolError(f"time {_short(value)} is not ISO 8601") from None
    if moment.tzinfo is None:
        raise ProtocolError(f"time {_short(value)} has no UTC offset (add Z or +00:00)")
    if len(value) == 27 and value[26] == "Z" and value[4] == value[7] == "-" and value[10] == "T" \
            and value[13] == value[16] == ":" and value[19] == ".":
        return value  # already in canonical form (not, say, an ISO week date of the same length)
    try:
        return format_time(moment)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is past year 9999 in UTC
        raise ProtocolError(f"time {_short(value)} is out of range") from None


def epoch_time(value: str) -> str:
    """Unix seconds (UTC, fractions allowed) in ``format_time`` form, rounded to the microsecond (ties to even).

    Allowed from 0 (1970) to before 253402300800 (the year 10000), at most 40 characters.
    """
    try:
        micros = int(Decimal(value).quantize(_MICROSECOND, ROUND_HALF_EVEN).scaleb(6))
    except (InvalidOperation, ValueError):
        micros = -1
    if len(value) > MAX_NUMBER_CHARS or not 0 <= micros < _EPOCH_LIMIT:
        raise ProtocolError(f"time {_short(value)}: Unix seconds out of range (0 to 253402300799.999999)")
    return format_time(_EPOCH + timedelta(microseconds=micros))


STATUS_PREFIX = b'{"status"'
"""A line that starts with these bytes is a sender's health report, never a reading (docs/protocol.md)."""


def is_status(line: bytes) -> bool:
    """True if a received line is a status line (checked on the raw bytes: cheap for every line)."""
    return line.startswith(STATUS_PREFIX)


def encode_ack(count: int) -> bytes:
    """``{"ack": N}``: the first N readings of the connection are durably handled."""
    return b'{"ack": %d}\n' % count


def encode_error(reason: str, line: int | None) -> bytes:
    """``{"error": reason, "line": K}`` for a rejected line."""
    return (json.dumps({"error": reason, "line": line}) + "\n").encode()


def _check_number(key: str, value: object) -> None:
    if type(value) is not Number and (type(value) is not str or JSON_NUMBER.match(value) is None):
        raise ProtocolError(f"{_short(key)} must be a number or null, got {_json_type(value)}")
    if len(value) > 17 or "e" in value or "E" in value:  # only these can overflow or underflow a double
        fault = number_fault(value)
        if fault is not None:
            raise ProtocolError(f"{_short(key)}: {fault}")


def number_fault(text: str) -> str | None:
    """Why a JSON number's text cannot be stored (too long, or out of a double's range); None if it can."""
    if len(text) > MAX_NUMBER_CHARS:
        return f"number longer than {MAX_NUMBER_CHARS} characters"
    number = float(text)
    if not math.isfinite(number):
        return "number out of range (Infinity is not allowed)"
    if number == 0.0 and any(c in "123456789" for c in text.lower().split("e")[0]):
        return "number out of range (too small for a double)"
    return None


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_seq(value: object) -> int:
    if type(value) is Number and value.isdigit():
        seq = int(value)
        if seq < SEQ_LIMIT:
            return seq
    raise ProtocolError(f"seq must be an integer >= 0, got {_short(value)}")


def _check_id(key: str, value: object) -> None:
    if not valid_id(value):
        raise ProtocolError(f"{key} {_short(value)} invalid: {ID_RULE}")
    if len(_valid_ids) >= 65536:
        _valid_ids.clear()
    _valid_ids.add(value)  # type: ignore[arg-type]


def _json_reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    return str(exc)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", Number: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _short(value: object, limit: int = 40) -> str:
    text = repr(str(value) if type(value) is Number else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

"""Wire protocol v1: JSON Lines over TCP (see docs/protocol.md).

This module turns one received line into a validated reading (or a ``ProtocolError``
with a one-line reason) and encodes the server's replies. It does no I/O.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from .columns import NAMES, SENSOR_COLUMNS
from .exc import ProtocolError

VERSION = 1
MAX_LINE_BYTES = 65536

Reading = dict[str, Any]

_ID_RULE = "1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit"
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_SENSOR = frozenset(SENSOR_COLUMNS)
_SERVER_SET = frozenset({"recv_time", "src_ip", "extra"})
_KNOWN = frozenset(NAMES)
_CANONICAL_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
_INT_LIMIT = 2**63

OK_LINE = b'{"ok": 1}\n'


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


_decoder = json.JSONDecoder(parse_constant=_no_constants)


def format_time(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds, the form every time column uses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> str:
    """The current time in the form of ``format_time``."""
    return format_time(datetime.now(UTC))


def valid_id(value: object) -> bool:
    """True if ``value`` may be a ``sh_id`` or ``session``."""
    return isinstance(value, str) and _ID_RE.match(value) is not None


def decode_line(line: bytes) -> dict[str, Any]:
    """Decode one line (without its newline) into a JSON object."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"invalid UTF-8 at byte {exc.start}") from None
    try:
        obj, end = _decoder.raw_decode(text, _skip_ws(text, 0))
    except ValueError as exc:
        raise ProtocolError(f"invalid JSON: {_json_reason(exc)}") from None
    if _skip_ws(text, end) != len(text):
        raise ProtocolError(f"invalid JSON: extra data at column {end + 1}")
    if not isinstance(obj, dict):
        raise ProtocolError(f"not a JSON object: got {_json_type(obj)}")
    return obj


def is_hello(obj: dict[str, Any]) -> bool:
    """True if a decoded first line is a hello rather than a reading."""
    return "hello" in obj


def parse_hello(obj: dict[str, Any]) -> bool:
    """Validate a hello; return whether the client asked for acks."""
    if obj.get("hello") != VERSION or type(obj.get("hello")) is not int:
        raise ProtocolError(f"unsupported hello {obj.get('hello')!r}: this server speaks protocol 1")
    acks = obj.get("acks", False)
    if type(acks) is not bool:
        raise ProtocolError("hello: acks must be true or false")
    unknown = sorted(set(obj) - {"hello", "acks", "sh_id"})
    if unknown:
        raise ProtocolError(f"hello: unknown key {unknown[0]!r}")
    return acks


def parse_reading(obj: dict[str, Any], recv_time: str, src_ip: str) -> Reading:
    """Validate a decoded line as a reading and return the row to store."""
    row: Reading = {}
    extra: dict[str, Any] | None = None
    for key, value in obj.items():
        if key in _SENSOR:
            row[key] = _number(key, value)
        elif key in _KNOWN:
            if key in _SERVER_SET:
                raise ProtocolError(f"{key} is set by the server, not the client")
            row[key] = value  # time, sh_id, session, seq: checked below
        elif key == "hello":
            raise ProtocolError("hello is only allowed as the first line")
        else:
            if extra is None:
                extra = {}
            extra[key] = _number(key, value)
    sh_id = row.get("sh_id")
    if sh_id is None:
        raise ProtocolError("sh_id missing")
    if not valid_id(sh_id):
        raise ProtocolError(f"sh_id {_short(sh_id)} invalid: {_ID_RULE}")
    has_session, has_seq = "session" in row, "seq" in row
    if has_session != has_seq:
        raise ProtocolError("session and seq must come together")
    if has_seq:
        if not valid_id(row["session"]):
            raise ProtocolError(f"session {_short(row['session'])} invalid: {_ID_RULE}")
        seq = row["seq"]
        if type(seq) is not int or not 0 <= seq < _INT_LIMIT:
            raise ProtocolError(f"seq must be an integer >= 0, got {_short(seq)}")
    row["time"] = parse_time(row["time"]) if "time" in row else recv_time
    row["recv_time"] = recv_time
    row["src_ip"] = src_ip
    if extra is not None:
        row["extra"] = json.dumps(extra, separators=(",", ":"))
    return row


def parse_time(value: object) -> str:
    """Normalise a client's ISO 8601 time with UTC offset to ``format_time`` form."""
    if not isinstance(value, str):
        raise ProtocolError(f"time must be an ISO 8601 string, got {_json_type(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ProtocolError(f"time {_short(value)} is not ISO 8601") from None
    if moment.tzinfo is None:
        raise ProtocolError(f"time {_short(value)} has no UTC offset (add Z or +00:00)")
    if _CANONICAL_TIME_RE.match(value):
        return value
    return format_time(moment)


def encode_ack(count: int) -> bytes:
    """``{"ack": N}``: the first N readings of the connection are durably handled."""
    return b'{"ack": %d}\n' % count


def encode_error(reason: str, line: int | None) -> bytes:
    """``{"error": reason, "line": K}`` for a rejected line."""
    return (json.dumps({"error": reason, "line": line}) + "\n").encode()


def _number(key: str, value: object) -> int | float | None:
    kind = type(value)
    if kind is float:
        if value - value == 0.0:  # type: ignore[operator]  # false for inf (1e999) and nan
            return value  # type: ignore[return-value]
        raise ProtocolError(f"{_short(key)}: number out of range (Infinity is not allowed)")
    if value is None:
        return None
    if kind is int:
        if -_INT_LIMIT <= value < _INT_LIMIT:  # type: ignore[operator]
            return value  # type: ignore[return-value]
        raise ProtocolError(f"{key}: integer out of range")
    raise ProtocolError(f"{_short(key)} must be a number or null, got {_json_type(value)}")


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _json_reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    return str(exc)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

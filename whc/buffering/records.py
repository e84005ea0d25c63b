"""Spool records that check themselves: each line carries its position and a CRC32.

A record is one line: ``<crc32 as 8 hex digits> <position in decimal> <reading as JSON>\\n``, where the
CRC covers ``<position> <reading>``. A flipped byte, a lost or added newline, zeros, garbage or a torn
tail all fail the check, and a good record says by itself which position it holds, so nothing is ever
inferred from counting lines. Segments of the first spool format held bare JSON lines; they are
recognised by their first byte ``{`` and converted when the spool is loaded.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator


def encode(position: int, payload: bytes) -> bytes:
    """The record for ``payload`` (one JSON line, with its newline) at ``position``."""
    body = b"%d " % position + payload
    return b"%08x " % zlib.crc32(body) + body


def decode(line: bytes) -> tuple[int, bytes] | None:
    """``(position, payload)`` of a whole, intact record; None if it fails any check."""
    if len(line) < 12 or line[8:9] != b" " or not line.endswith(b"\n"):
        return None
    body = line[9:]
    try:
        crc = int(line[:8], 16)
    except ValueError:
        return None
    if zlib.crc32(body) != crc:
        return None
    number, _, payload = body.partition(b" ")
    if not number.isdigit() or not payload.startswith(b"{") or b"\n" in payload[:-1]:
        return None
    return int(number), payload


def is_legacy(head: bytes) -> bool:
    """True for a segment in the first format (bare JSON lines, positions by line number)."""
    return head[:1] == b"{"


def legacy_records(data: bytes, first: int) -> Iterator[tuple[int, int, bytes, bytes | None]]:
    """``(offset, position, line, payload or None if unreadable)`` of a first-format segment."""
    offset = 0
    for index, line in enumerate(data.splitlines(keepends=True)):
        payload: bytes | None = line
        try:
            if not line.endswith(b"\n") or not isinstance(json.loads(line), dict):
                payload = None
        except ValueError:
            payload = None
        yield offset, first + index, line, payload
        offset += len(line)

"""Framing: how received bytes become lines (docs/protocol.md, "Objects in a row").

A line ends at a newline; JSON objects sent back to back, with no newline or several on one line,
are cut apart so each is one line; a UTF-8 byte-order mark at the very start is dropped. Framing
only: a piece cut off may still be refused when it is decoded.
"""

from __future__ import annotations

import re

from .protocol import DECODER

BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark, ignored at the very start of a connection
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def cut_objects(data: bytes) -> tuple[list[bytes], bytes]:
    """Cut the complete JSON objects that ``data`` starts with off it (framing, docs/protocol.md).

    Returns each object's bytes, in order, and the rest of ``data`` from the first byte that does
    not begin another complete object (JSON whitespace between and after objects is dropped).
    Framing only: an object that is cut off may still be refused when it is decoded as a line.
    """
    text = data.decode("utf-8", "surrogateescape")  # bytes survive the round trip, even invalid UTF-8
    objects: list[bytes] = []
    start = _JSON_SPACE.match(text).end()  # type: ignore[union-attr]
    while start < len(text) and text[start] == "{":
        try:
            end = DECODER.raw_decode(text, start)[1]
        except (ValueError, RecursionError):
            break  # incomplete so far, or broken: the rest stays together
        objects.append(text[start:end].encode("utf-8", "surrogateescape"))
        start = _JSON_SPACE.match(text, end).end()  # type: ignore[union-attr]
    if not objects:
        return objects, data
    return objects, text[start:].encode("utf-8", "surrogateescape")


def split_line(line: bytes) -> list[bytes] | None:
    """The pieces of a line that holds several JSON objects in a row, or None if it is one piece.

    A line is split only if it starts with a complete object followed by something else. Each
    complete object is one piece; whatever follows the last of them is one more piece (to be
    refused). Called only for a line that failed to decode, so newline clients never pay for it.
    """
    objects, rest = cut_objects(line)
    if not objects or len(objects) == 1 and not rest:
        return None
    if rest:
        objects.append(rest)
    return objects

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
RESCAN_AFTER_BYTES = 4096  # an unterminated rest longer than this, with no whole object, waits to double


class Framer:
    """One connection's received bytes, cut into lines; ``rest`` holds the unterminated end so far."""

    def __init__(self) -> None:
        self.rest = b""
        self.at_start = True  # nothing received yet (a leading byte-order mark is dropped)
        self.cut_from = 0  # look for whole objects in the unterminated rest once it is this long

    def lines(self, data: bytes, eof: bool = False) -> list[bytes]:
        """The lines ``data`` completes (at ``eof``, the rest too: a JSON object needs no newline)."""
        chunk = self.rest + data if self.rest else data
        if self.at_start:
            chunk = self._drop_bom(chunk, eof)
        lines = chunk.split(b"\n")
        self.rest = lines.pop()
        if lines:
            self.cut_from = 0  # a newline arrived: this rest is new
        if b"}" in self.rest:  # objects back to back without newlines: each is a line once complete
            self._cut_rest(lines)
        if eof and self.rest:
            lines.append(self.rest)
            self.rest = b""
        return lines

    def whole_lines(self, data: bytes, max_line_bytes: int) -> tuple[bytes, bytes] | None:
        """The whole lines that ``data`` completes, as one block, and the rest after them; nothing changes.

        Only for the simple case, where ``lines`` would cut nothing more and no line is longer than
        ``max_line_bytes``: None at the start of a connection, when no line ends, when the rest may
        hold whole objects, or when a line is too long. ``keep`` the rest if the block is taken.
        """
        if self.at_start:
            return None
        chunk = self.rest + data if self.rest else data
        end = chunk.rfind(b"\n") + 1
        if not end or b"}" in chunk[end:]:
            return None
        at = 0
        while at < end:  # from each line start, the last newline within reach: one step per max_line_bytes
            at = chunk.rfind(b"\n", at, at + max_line_bytes + 1) + 1
            if not at:
                return None  # a line longer than max_line_bytes
        return (chunk[:end], chunk[end:]) if end < len(chunk) else (chunk, b"")

    def keep(self, rest: bytes) -> None:
        """Take the block ``whole_lines`` gave: ``rest`` is the unterminated rest now."""
        self.rest = rest
        self.cut_from = 0  # (as ``lines`` does when a newline arrives)

    def take_rest(self) -> bytes:
        """The unterminated rest, which is then gone."""
        rest, self.rest = self.rest, b""
        return rest

    def _drop_bom(self, chunk: bytes, eof: bool) -> bytes:
        """Drop a UTF-8 byte-order mark that starts the connection."""
        if len(chunk) < len(BOM) and BOM.startswith(chunk) and not eof:
            return chunk  # maybe the start of one: decide when more has arrived
        self.at_start = False
        return chunk[len(BOM):] if chunk.startswith(BOM) else chunk

    def _cut_rest(self, lines: list[bytes]) -> None:
        """Move whole objects from the unterminated rest to ``lines`` (which holds the lines just ended).

        A long rest that holds none (a broken object) is looked at again only once it has doubled,
        so a client trickling bytes into it cannot make the server rescan it for every segment.
        """
        if len(self.rest) < self.cut_from:
            return
        objects, self.rest = cut_objects(self.rest)
        lines.extend(objects)
        self.cut_from = 2 * len(self.rest) if len(self.rest) > RESCAN_AFTER_BYTES else 0

    @staticmethod
    def split(lines: list[bytes], index: int, line: bytes) -> bool:
        """Put the pieces of a line holding several JSON objects after it in ``lines``; False if it is one piece."""
        if b"}" not in line:
            return False
        pieces = split_line(line)
        if pieces is None:
            return False
        lines[index + 1:index + 1] = pieces
        return True


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

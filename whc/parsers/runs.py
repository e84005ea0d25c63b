"""Runs: a received block of whole lines from one unit, proven plain all at once and made into CSV lines.

A sender's stream is mostly a run: one ``sh_id``, one ``session`` with consecutive ``seq``s (or no
session at all), every ``time`` already in canonical form and every sensor value a plain number.
The parsers decode such a block in one call and check each property over the whole block, with a
few C-speed operations instead of Python steps per reading (``check_times``, ``plain_numbers``,
``csv_lines``). With msgspec, when every line is written the way a sender writes it, the sensor
columns are cut from the block's own text (``as_written``) rather than joined value by value.
Anything that is not plainly a run gives None, and the caller takes the block line by line. A run's
lines are exactly ``format_row(reference(line))`` of each of its lines (tests/parsers checks it over
a corpus and generated blocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from operator import itemgetter
from typing import TYPE_CHECKING

from ..columns import NAMES, SENSOR_COLUMNS
from ..exc import ProtocolError
from ..protocol import MAX_NUMBER_CHARS, Reading
from .plain import known_id, known_second

if TYPE_CHECKING:
    from . import Parser

SessionKey = tuple[str, str]

MIN_LINES = 8  # fewer lines are cheaper taken one by one: a run's fixed cost is two readings (bench_parse.py)
_TIME_CHARS = 27  # "YYYY-MM-DDTHH:MM:SS.ffffffZ", format_time's form
_SECONDS = itemgetter(slice(0, 19))
_NUMBER_CHARS = b"0123456789.-eE+"  # what a JSON number is written with
_AS_DIGITS = bytes.maketrans(_NUMBER_CHARS, b"d" * len(_NUMBER_CHARS))
_TOO_LONG = b"d" * (MAX_NUMBER_CHARS + 1)
_AS_EXPONENTS = bytes.maketrans(b"0123456789eE+-", b"ddddddddddEEss")
_CUT_NUMBER_CHARS = b"0123456789.-E+"  # what as_written takes as a number's: an e goes with the keys' letters
_SENSOR_COUNT = len(SENSOR_COLUMNS)
_NOT_BRACES = bytes(byte for byte in range(256) if byte not in b"{}\n")  # deleted: what one_per_line ignores
_KEY_CHARS = bytes(range(ord("a"), ord("z") + 1)) + b'_":{}\r'  # deleted by as_written: all of the keys, and more
if NAMES != ("time", "sh_id", *SENSOR_COLUMNS, "seq", "session", "recv_time", "src_ip", "extra"):
    raise ImportError("csv_lines writes the columns in this order: update it with NAMES")


@dataclass(eq=False)
class Run:
    """The readings of a block of whole lines, as CSV lines (``format_row``'s), in order.

    ``key`` is (sh_id, session), and line i has seq ``first_seq + i``; with no session, ``key`` is
    None. ``first`` and ``last`` are the first and last readings, as the reference gives them.
    """

    sh_id: str
    key: SessionKey | None
    first_seq: int
    lines: list[str]
    first: Reading
    last: Reading


def one_per_line(block: bytes, count: int) -> bool:
    """Each line of ``block`` (whole lines) holds exactly one of the ``count`` objects decoded from it.

    Its braces and newlines alone read ``{}\n`` once per value: each line opens one object and
    closes one. No object holds a nested one, not even in a value that a later copy of its key
    replaced, and no string holds a brace, so the ``}`` of each line closes the object its ``{``
    opened: no object goes on over a line end, and no line holds two. (A CR before the newline is
    JSON whitespace, which both decoders and the line-by-line way skip alike.)
    """
    return count > 0 and block.translate(None, _NOT_BRACES) == b"{}\n" * count


def one_id(ids: set) -> str | None:
    """The one valid ``sh_id`` or ``session`` in ``ids`` (of a form no number's text takes), else None."""
    if len(ids) != 1:
        return None
    (value,) = ids
    return value if value.__class__ is str and known_id(value) else None


def check_times(times: list) -> bool:
    """Every time is valid and already in ``format_time``'s form, so it is stored as sent."""
    count = len(times)
    try:
        joined = "".join(times)
    except TypeError:  # a time missing (the receive time is used) or not a string
        return False
    if set(map(len, times)) != {_TIME_CHARS}:
        return False
    if joined[19::_TIME_CHARS] != "." * count or joined[26::_TIME_CHARS] != "Z" * count:
        return False
    fraction = "".join([joined[at::_TIME_CHARS] for at in range(20, 26)])
    if not (fraction.isascii() and fraction.isdigit()):
        return False
    return all(map(known_second, set(map(_SECONDS, times))))


def plain_numbers(values: bytes) -> bool:
    """``values`` (JSON numbers joined with commas or newlines) holds no number of over 40 characters
    and no exponent of over two digits. Such numbers are stored as they are written: none is out of a
    double's range (``protocol.number_fault`` passes them).
    """
    if values.translate(None, _NUMBER_CHARS + b",\n") or _TOO_LONG in values.translate(_AS_DIGITS):
        return False
    return b"e" not in values and b"E" not in values or _short_exponents(values)


def _short_exponents(numbers: bytes) -> bool:
    """No exponent in ``numbers`` has over two digits."""
    marked = numbers.translate(_AS_EXPONENTS)
    return b"Eddd" not in marked and b"Esddd" not in marked


@dataclass(eq=False)
class Sensors:
    """Each reading's sensor columns as CSV text: ``lead``, then ``columns[i]``, then ``trail``."""

    columns: list[str]
    lead: str = ""  # the empty columns before the first one sent
    trail: str = ""  # the empty columns after the last one sent


def csv_lines(times: list[str], sh_id: str, sensors: Sensors, seqs: list[int] | None, session: str | None,
              recv_time: str, src_ip: str) -> list[str]:
    """The CSV lines of a run."""
    head = f",{sh_id},{sensors.lead}"
    trail = sensors.trail
    if seqs is None:
        tail = f"{trail},,,{recv_time},{src_ip},\n"
        return [f"{time}{head}{values}{tail}" for time, values in zip(times, sensors.columns, strict=True)]
    tail = f",{session},{recv_time},{src_ip},\n"
    return [f"{time}{head}{values}{trail},{seq}{tail}"
            for time, values, seq in zip(times, sensors.columns, seqs, strict=True)]


def as_written(block: bytes, count: int, time: str | None, sh_id: str, values: list[tuple[str, bytes]],
               session: str | None, seqs: list[int] | None) -> Sensors | None:
    """The sensor columns of a run's lines, cut from the block's own text, or None unless every line
    is written as a sender writes it: no spaces, ``time`` and ``sh_id`` first, the sensor keys in
    column order, then ``session`` and ``seq`` (in either order) or neither.

    The caller has decoded the block (whole lines) into ``count`` values with a decoder that refuses
    unknown keys, takes only strict JSON numbers and a seq only as an integer, and has checked them as
    a run: one ``sh_id`` and ``session``, canonical times, consecutive ``seqs``. ``time`` (None if not
    sent) and ``values`` (the sensor columns sent, in column order, with their text) are those of
    the first line.

    The first line must be exactly that form, written from its own values, which must be plain
    numbers. Every other line must then read the same once the characters numbers are written with
    (``0-9.-E+``) are deleted from both: the same keys in the same places, and between them only such
    characters, which the decoder took as numbers (a string or ``true`` would need other characters).
    One ``translate`` of the block then deletes every lowercase letter, ``_``, quote, colon, brace and
    CR: all of the keys, and parts of the time and ids, which are as long on every line. Each line's
    sensor values, with their commas, are what is left between the ``sh_id`` and what follows the
    values (``session`` and ``seq``, or the end), cut at offsets that depend only on the number of
    digits of the line's seq. (An exponent written ``e``, as Python writes them, would be deleted
    with the letters: such a block, like one with a number of over 40 characters, is left to the
    caller to join value by value.)
    """
    numbers = b",".join([text for _, text in values])
    if not values or not plain_numbers(numbers) or b"e" in numbers or not block.endswith(b"\n"):
        return None
    first = block[:block.index(b"\n")]
    head = (b'{"time":"%s",' % time.encode() if time is not None else b"{") + b'"sh_id":"%s",' % sh_id.encode()
    body = b",".join([b'"%s":%s' % (column.encode(), text) for column, text in values])
    if seqs is None:
        tails = [b"}"]
    else:
        named, numbered = b'"session":"%s"' % session.encode(), b'"seq":%d' % seqs[0]
        tails = [b",%s,%s}" % (named, numbered), b",%s,%s}" % (numbered, named)]
    written = first[:-1] if first.endswith(b"\r") else first
    tail = next((tail for tail in tails if written == head + body + tail), None)
    if tail is None \
            or block.translate(None, _CUT_NUMBER_CHARS) != (first.translate(None, _CUT_NUMBER_CHARS) + b"\n") * count:
        return None
    indexes = [SENSOR_COLUMNS.index(column) for column, _ in values]
    text = block
    for before, index in pairwise(indexes):
        if index - before > 1:  # columns not sent between two that are: their empty columns, in the text
            key = b',"%s":' % SENSOR_COLUMNS[index].encode()
            text = text.replace(key, b"," * (index - before - 1) + key)
    text = text.translate(None, _KEY_CHARS)
    if _TOO_LONG in text.translate(_AS_DIGITS) or b"E" in text and not _short_exponents(text):
        return None  # (no time has a run of 41 such characters, nor an E; an id may: the block is joined then)
    lines = text.decode().split("\n", count)
    start = len(head.translate(None, _KEY_CHARS))
    if seqs is None:
        columns = [line[start:] for line in lines[:count]]
    else:
        columns = []
        first_seq, done = seqs[0], 0
        digits = len(str(first_seq))
        after = len(tail.translate(None, _KEY_CHARS)) - digits  # what follows the values, but the seq's digits
        while done < count:  # once per number of digits among the seqs (at most 19)
            upto = min(count, 10**digits - first_seq)
            columns += [line[start:-after - digits] for line in lines[done:upto]]
            done, digits = upto, digits + 1
    return Sensors(columns, "," * indexes[0], "," * (_SENSOR_COUNT - 1 - indexes[-1]))


def sensor_text(present: list[str]) -> tuple[str, str | None]:
    """How to write the sensor columns of readings whose sensor keys are ``present`` (in column order).

    ``(padding, None)`` when ``present`` begins the sensor columns: the values joined with commas,
    then ``padding``; else ``("", template)``: a %-template that takes the values in order.
    """
    count = len(present)
    if count and list(SENSOR_COLUMNS[:count]) == present:
        return "," * (_SENSOR_COUNT - count), None
    return "", ",".join("%s" if column in present else "" for column in SENSOR_COLUMNS)


def make_run(parser: Parser, block: bytes, sh_id: str, session: str | None, seqs: list[int] | None,
             times: list[str], sensors: Sensors, recv_time: str, src_ip: str) -> Run | None:
    """The run of a block whose values passed the checks above, or None if the reference refuses its
    first or last line (whose readings, parsed by ``parser``, feed the live view)."""
    first = block[:block.index(b"\n")]
    last = block[block.rfind(b"\n", 0, len(block) - 1) + 1:-1]
    try:
        ends = parser.parse(first, recv_time, src_ip), parser.parse(last, recv_time, src_ip)
    except ProtocolError:
        return None
    return Run(sh_id, None if session is None else (sh_id, session), seqs[0] if seqs else 0,
               csv_lines(times, sh_id, sensors, seqs, session, recv_time, src_ip), *ends)

"""A block of lines is taken as a run only if every line of it is stored by the reference, and then
each of its CSV lines, its session key, seqs and end readings are exactly the reference's."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from whc.columns import SENSOR_COLUMNS
from whc.exc import ProtocolError
from whc.framing import split_line
from whc.parsers import PARSERS, load
from whc.parsers.stdlib import reference
from whc.storage.sinks.csv import CsvSink

from .test_equivalence import CORPUS, LINES

RECV_TIME = "2026-11-24T12:00:00.000000Z"
IP = "10.0.0.7"


def reading_line(seq: int | None = 0, sh_id: str = "rpi01", sensors: tuple[str, ...] = SENSOR_COLUMNS[:9],
                 session: str | None = "s1", time: str | None = None, spaced: bool = False,
                 timed: bool = True) -> bytes:
    tick = (seq or 0) % 3600
    obj: dict = {"time": time or f"2026-11-24T12:{tick // 60:02d}:{tick % 60:02d}.{(seq or 0) % 10**6:06d}Z",
                 "sh_id": sh_id}
    obj.update({column: round(0.25 * (index + 1) - 1.5, 4) for index, column in enumerate(sensors)})
    if session is not None:
        obj.update(session=session, seq=seq)
    if not timed:
        del obj["time"]
    return json.dumps(obj, separators=(", ", ": ") if spaced else (",", ":")).encode()


def broken(seq: int, keep_comma: bool) -> list[bytes]:
    """A reading over two lines: the line ends at a comma, or where a comma was."""
    line = reading_line(seq)
    cut = line.index(b',"ori_r"')
    return [line[:cut + keep_comma], line[cut + 1:]]


def replaced_nested(seq: int) -> list[bytes]:
    """A reading over two lines, the first ending in the } of a value its key's second copy replaces."""
    line = reading_line(seq)
    cut = line.index(b',"ori_r"')
    return [line[:cut] + b',"ori_r":{}', line[cut:]]


def block_of(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def check(parser, lines: list[bytes]):
    """The run the parser makes of the lines, checked against the reference line by line (or None)."""
    run = parser.parse_run(block_of(lines), RECV_TIME, IP)
    if run is None:
        return None
    readings = []
    pieces = [piece for line in lines for piece in (split_line(line) or [line])]  # (objects in a row: framing's)
    for line in filter(bytes.strip, pieces):  # (blank lines carry nothing: the handler skips them)
        try:
            readings.append(reference(line, RECV_TIME, IP))
        except ProtocolError as exc:
            pytest.fail(f"a run took a line the reference refuses ({exc}): {line!r}")
    rows = [CsvSink.encode(reading) for reading in readings]
    assert run.lines == [row[2] for row in rows]
    assert {row[0] for row in rows} == {run.key}
    if run.key is not None:
        assert [row[1] for row in rows] == list(range(run.first_seq, run.first_seq + len(rows)))
    assert {reading["sh_id"] for reading in readings} == {run.sh_id}
    assert (run.first, run.last) == (readings[0], readings[-1])
    return run


@pytest.fixture(params=sorted(PARSERS))
def parser(request):
    return load(request.param)


@pytest.mark.parametrize("lines", [
    [reading_line(seq) for seq in range(200)],
    [reading_line(seq, spaced=True) for seq in range(5)],
    [reading_line(None, session=None) for _ in range(3)],
    [reading_line(seq, sensors=SENSOR_COLUMNS[:13]) for seq in range(3)],
    [reading_line(seq, sensors=("temp_h", "humidity")) for seq in range(3)],
    [reading_line(seq, sensors=("cpu_temp",)) for seq in range(3)],
    [reading_line(seq, sensors=()) for seq in range(3)],
    [reading_line(2**63 - 2), reading_line(2**63 - 1)],
    [reading_line(7)],
    [reading_line(seq, timed=False) for seq in range(3)],
    [reading_line(seq) + b"\r" for seq in range(3)],
    [reading_line(seq).replace(b"-1.25", b"-1.25e0").replace(b"-1.0", b"1E+16") for seq in range(3)],
], ids=["sender", "spaced", "no session", "magnetometer", "environment", "one value", "no values", "top seqs",
        "one line", "no time", "CRLF", "exponents"])
def test_a_senders_block_is_taken_as_a_run(parser, lines: list[bytes]) -> None:
    assert check(parser, lines) is not None


@pytest.mark.parametrize("lines", [
    [reading_line(0), reading_line(2)],  # a gap
    [reading_line(1), reading_line(0)],
    [reading_line(0), reading_line(0)],  # a resend within the block
    [reading_line(0), reading_line(1, sh_id="rpi02")],
    [reading_line(0), reading_line(1, session="s2")],
    [reading_line(0), reading_line(None, session=None)],
    [reading_line(0), reading_line(1, timed=False)],
    [reading_line(2**63 - 1), reading_line(2**63)],
    [reading_line(0, time="2026-11-24T12:00:00Z")],  # not canonical: the reference rewrites it
    [reading_line(0, time="2026-02-30T12:00:00.000000Z")],
    [reading_line(0, sh_id="123")],  # an id in a number's form
    [reading_line(0).replace(b'"seq":0', b'"seq":-0')],
    [reading_line(0).replace(b"-1.25", b"-1.25e-100")],  # stored line by line: runs take exponents of 2 digits
    [reading_line(0).replace(b"-1.25", b"-1.25E400")],
    [reading_line(0).replace(b"-1.25", b"null")],
    [reading_line(0).replace(b"-1.25", b'"-1.25"')],
    [reading_line(0).replace(b"-1.25", b"1" * 41)],
    [reading_line(0).replace(b'"ori_r"', b'"vibration"')],  # stored with extra: not a run's
    [reading_line(0) + reading_line(1)],
    [b'{"status":1,"backlog":0}', reading_line(0)],
    [b'{"hello":1,"acks":true}', reading_line(0)],
    [reading_line(0), *broken(1, keep_comma=True), reading_line(2)],  # an object over two lines
    [reading_line(0), *broken(1, keep_comma=False), reading_line(2)],
    [reading_line(0), reading_line(1) + reading_line(2), *broken(3, keep_comma=True), reading_line(4)],  # as many
    [reading_line(0), reading_line(1) + reading_line(2), *broken(3, keep_comma=False), reading_line(4)],  # lines
    [reading_line(0), reading_line(1).replace(b'"ori_r":-1.25', b'"ori_r":{}\n"ori_p":{}'), reading_line(2)],
    [reading_line(0), b'{"a":{}', b'"b":{}}', b"true"],
    [reading_line(0), b"[{}", b"{}", b"{}]", b"true"],
    [reading_line(0), *replaced_nested(1), reading_line(2) + reading_line(3), reading_line(4)],
    [reading_line(0), reading_line(1).replace(b'"ori_r":-1.25', b'"ori_r":"\xff","ori_r":-1.25'), reading_line(2)],
    [reading_line(0), reading_line(1).replace(b'"ori_r":-1.25', b'"ori_r":"\xc0\x80","ori_r":-1.25'),
     reading_line(2)],  # invalid UTF-8 in a value replaced by a later copy of its key
], ids=range(31))
def test_a_block_that_is_not_plainly_a_run_is_left_to_the_lines(parser, lines: list[bytes]) -> None:
    assert check(parser, lines) is None


def test_a_key_written_twice_is_taken_only_with_the_last_value_as_the_reference_does(parser) -> None:
    twice = reading_line(0).replace(b'"ori_r":-1.25', b'"ori_r":-1.25,"ori_r":1')
    run = check(parser, [twice])
    assert run is None or run.lines[0].split(",")[2] == "1"


@pytest.mark.parametrize("lines", [
    [reading_line(0).replace(b'"rpi01"', b'"rpi\\u0030"')],
    [reading_line(0).replace(b'"ori_r"', b'"ori\\u005fr"')],
    [reading_line(0), b"", reading_line(1)],
    [b"  " + reading_line(0), b"\t"],
    [reading_line(0) + reading_line(1), b""],
    [reading_line(seq) + b"\r" for seq in range(3)],
], ids=["escaped id", "escaped key", "blank line", "spaces around", "two objects and a blank line", "CRLF"])
def test_escapes_and_blank_lines_are_taken_only_as_the_reference_takes_them(parser, lines: list[bytes]) -> None:
    check(parser, lines)


@pytest.mark.parametrize("line", CORPUS, ids=range(len(CORPUS)))
def test_a_corpus_line_in_a_run_is_taken_only_as_the_reference_stores_it(parser, line: bytes) -> None:
    for lines in ([line], [reading_line(6), line, reading_line(8)], [line, line]):
        check(parser, lines)


@st.composite
def runs(draw) -> list[bytes]:
    """Sender-like blocks, with now and then a line from the equivalence corpus's generator."""
    first = draw(st.sampled_from([0, 1, 5, 2**63 - 3]))
    sensors = tuple(draw(st.lists(st.sampled_from(SENSOR_COLUMNS), max_size=6, unique=True)))
    session = draw(st.sampled_from(["s1", None]))
    timed = draw(st.booleans())
    lines = [reading_line(first + index if session else None, sensors=sensors, session=session,
                          spaced=draw(st.booleans()), timed=timed)
             for index in range(draw(st.integers(1, 5)))]
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        at = draw(st.integers(0, len(lines)))
        lines[at:at + draw(st.integers(0, 1))] = [draw(LINES).replace(b"\n", b"")]
    return lines


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=runs())
def test_generated_blocks_are_runs_only_as_the_reference_stores_them(lines: list[bytes]) -> None:
    for name in sorted(PARSERS):
        check(load(name), lines)

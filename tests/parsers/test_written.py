"""A run's sensor columns cut from the block's own text (``runs.as_written``) are exactly the
reference's, and any line written otherwise than the first makes the block go the joined way (or
line by line), never a wrongly cut row."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from whc.columns import SENSOR_COLUMNS
from whc.parsers import PARSERS, load
from whc.parsers.runs import as_written
from whc.parsers.stdlib import reference

from .test_runs import RECV_TIME, block_of, check, parser  # noqa: F401 - parser is a fixture

DEFAULT = SENSOR_COLUMNS[:9]  # a sender's default groups: orientation, gyroscope, accelerometer
WITH_ENVIRONMENT = SENSOR_COLUMNS[:9] + SENSOR_COLUMNS[13:17]  # columns left out between two groups


def value(seq: int, index: int) -> float | int:
    """A sensor value that changes with the line, in length and sign too."""
    spread = (seq * 7919 + index * 104729) % 2000003
    return spread - 1000000 if spread % 5 == 0 else round(spread / 1000 - 1000, spread % 7)


def written(seq: int | None, sensors: tuple[str, ...] = DEFAULT, session: str | None = "s1",
            timed: bool = True, seq_first: bool = False, sh_id: str = "rpi01", scale: float = 1) -> bytes:
    """A line as a sender writes it (json.dumps, no spaces), with values that differ line by line."""
    tick = seq or 0
    obj: dict = {"time": f"2026-11-24T12:{tick // 60 % 60:02d}:{tick % 60:02d}.{tick * 7 % 10**6:06d}Z"} \
        if timed else {}
    obj["sh_id"] = sh_id
    obj.update({column: value(tick, index) * scale for index, column in enumerate(sensors)})
    if session is not None:
        obj.update({"seq": seq, "session": session} if seq_first else {"session": session, "seq": seq})
    return json.dumps(obj, separators=(",", ":")).encode()


def with_value(line: bytes, column: str, text: bytes) -> bytes:
    """The line with the value of ``column`` written as ``text``."""
    start = line.index(b'"%s":' % column.encode()) + len(column) + 3
    return line[:start] + text + line[line.index(b",", start):]


def cut(lines: list[bytes]):
    """What ``as_written`` makes of the lines, given what the reference reads in the first."""
    first = reference(lines[0], RECV_TIME, "10.0.0.7")
    sent = [(column, first[column].encode()) for column in SENSOR_COLUMNS if column in first]
    seq = first.get("seq")
    seqs = None if seq is None else list(range(seq, seq + len(lines)))
    return as_written(block_of(lines), len(lines), lines[0].startswith(b'{"time"') and first["time"] or None,
                      first["sh_id"], sent, first.get("session"), seqs)


@pytest.mark.parametrize("lines", [
    [written(seq) for seq in range(200)],
    [written(seq) for seq in range(95, 105)],  # seqs of two and three digits
    [written(seq) for seq in range(9, 1002)],  # of one to four digits
    [written(seq) for seq in range(2**63 - 9, 2**63)],
    [written(seq, sensors=SENSOR_COLUMNS) for seq in range(10)],
    [written(seq, sensors=WITH_ENVIRONMENT) for seq in range(10)],
    [written(seq, sensors=("ori_r", "gyr_z", "col_c")) for seq in range(10)],
    [written(seq, sensors=SENSOR_COLUMNS[13:17]) for seq in range(10)],
    [written(seq, sensors=("col_c",)) for seq in range(10)],
    [written(seq, seq_first=True) for seq in range(5, 15)],
    [written(None, session=None) for _ in range(10)],
    [written(seq, timed=False) for seq in range(10)],
    [written(seq, sh_id="A-1.2_3") for seq in range(10)],
    [written(seq) + b"\r" for seq in range(10)],
    [written(seq, scale=1e-9).replace(b"e-", b"E-") for seq in range(10)],
    [written(seq, scale=1e17, sh_id="E-1").replace(b"e+", b"E+") for seq in range(10)],
], ids=["sender", "two digits to three", "one to four digits", "top seqs", "every column", "a gap", "gaps",
        "environment only", "last column only", "seq first", "no session", "no time", "id with dots", "CRLF",
        "exponents written E-", "exponents written E+"])
def test_a_block_written_as_a_sender_writes_it_is_cut_from_its_text(parser, lines: list[bytes]) -> None:  # noqa: F811
    assert cut(lines) is not None
    run = check(parser, lines)
    assert run is not None and len(run.lines) == len(lines)


MIDDLE = [  # what a middle line becomes; the reference stores some of them, differently or not at all
    (b'"ori_p":', b'"ori_p1":'),  # a key with a number's character: unknown, stored in extra
    (b'"ori_p":', b'"1ori_p":'),
    (b'"ori_p":', b'"or-i_p":'),
    (b'"ori_p":', b'"ori_p.":'),
    (b'"ori_p":', b'"ori_p": '),  # a space
    (b'"ori_p":', b'"ori_p":1e3,"x":'),
    (b'"ori_p":', b'"ori_p":"1",'),
    (b'"ori_p":', b'"ori_p":null,"x":'),
    (b'"ori_p":', b'"ori_p":-0,"ori_p":'),  # a key written twice
    (b'"ori_p":', b'"ori_p":1' + b"0" * 41 + b',"x":'),
    (b'"ori_p":', b'"ori_y":1,"ori_p":'),  # one more key, also in another order
    (b'"seq":', b'"seq":0'),  # a leading zero
    (b'"sh_id":"rpi01"', b'"sh_id":"rpi02"'),
    (b'"session":"s1"', b'"session":"s2"'),
    (b'"session":"s1"', b'"session":"s11"'),
    (b'T12:', b'T1-:'),
    (b'Z"', b'1Z"'),
    (b'.', b'-'),  # the first dot, in the time
    (b'{', b'{"x":1,'),
    (b'}', b',"x":1}'),
    (b'"ori_p":', b'"ori_p":1e5,"ori_p":'),  # an exponent without a sign
    (b'"ori_p":', b'"ori_p":1e-100,"ori_p":'),
    (b'"ori_p":', b'"ori_p":1E-5,"ori_p":'),  # an exponent written E (and the key twice)
]


@pytest.mark.parametrize("before, after", MIDDLE, ids=range(len(MIDDLE)))
def test_a_line_written_otherwise_is_never_cut_wrongly(parser, before: bytes, after: bytes) -> None:  # noqa: F811
    lines = [written(seq) for seq in range(20, 30)]
    lines[5] = lines[5].replace(before, after, 1)
    check(parser, lines)


def test_a_first_line_written_otherwise_is_never_cut(parser) -> None:  # noqa: F811
    for before, after in MIDDLE:
        lines = [written(seq) for seq in range(20, 30)]
        lines[0] = lines[0].replace(before, after, 1)
        check(parser, lines)


@pytest.mark.parametrize("first, middle, scale, cut_from_the_text", [
    (b"1e5", b"1e5", 1e-9, False),  # (its e would go with the keys' letters: the values are joined instead)
    (b"-1.5e-05", b"-1.5e-05", 1, False),
    (b"1.5", b"-1.5e-05", 1, False),  # (only in a later line)
    (b"1.5", b"2E+16", 1, True),
    (b"2E+16", b"2E+16", 1, True),
    (b"2E+16", b"2E+16", 1e-9, False),  # (next to exponents written e-)
    (b"1.5e-100", b"1.5e-100", 1e-9, None),  # (not a run: runs take exponents of at most two digits)
    (b"1.5e-10", b"1.5e-400", 1e-9, None),  # (the reference refuses it: too small for a double)
    (b"1.5E+10", b"1.5E+400", 1, None),
])
def test_exponents_are_cut_from_the_text_only_as_they_are_written(
        parser, first: bytes, middle: bytes, scale: float, cut_from_the_text: bool | None) -> None:  # noqa: F811
    lines = [written(seq, scale=scale) for seq in range(20, 30)]
    lines[0] = with_value(lines[0], "ori_p", first)
    lines[5] = with_value(lines[5], "ori_p", middle)
    assert (cut(lines) is not None) is bool(cut_from_the_text)
    assert (check(parser, lines) is not None) is (cut_from_the_text is not None)


@pytest.mark.parametrize("scale", [1e-9, 1e17])
def test_a_block_with_exponents_as_python_writes_them_is_joined(parser, scale: float) -> None:  # noqa: F811
    lines = [written(seq, scale=scale) for seq in range(10)]  # 1.5e-07, 1.5e+20
    assert cut(lines) is None
    assert check(parser, lines) is not None


@pytest.mark.parametrize("length", [40, 41])
def test_a_number_is_cut_from_the_text_only_up_to_the_longest_the_reference_stores(parser, length: int) -> None:  # noqa: F811
    lines = [written(seq) for seq in range(20, 30)]
    lines[5] = with_value(lines[5], "ori_p", b"-" + b"1" * (length - 3) + b".5")
    run = check(parser, lines)
    assert (run is not None) == (length == 40)


@st.composite
def mutated(draw) -> list[bytes]:
    """A sender's block with a few bytes of a few lines changed, put in or taken out."""
    sensors = draw(st.sampled_from([DEFAULT, WITH_ENVIRONMENT, SENSOR_COLUMNS[:1]]))
    first = draw(st.sampled_from([0, 8, 95, 2**63 - 12]))
    lines = [written(seq, sensors=sensors) for seq in range(first, first + 10)]
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, 9))
        line = lines[index]
        at = draw(st.integers(0, len(line)))
        removed = draw(st.integers(0, 2))
        lines[index] = line[:at] + draw(st.binary(max_size=2).filter(lambda b: b"\n" not in b)) + line[at + removed:]
    return lines


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=mutated())
def test_mutated_blocks_are_cut_only_as_the_reference_stores_them(lines: list[bytes]) -> None:
    for name in sorted(PARSERS):
        check(load(name), lines)


def test_a_block_not_ending_in_a_newline_is_not_a_run(parser) -> None:  # noqa: F811
    lines = [written(seq) for seq in range(20, 30)]
    for block in (lines[0], block_of(lines)[:-1]):
        assert parser.parse_run(block, RECV_TIME, "10.0.0.7") is None

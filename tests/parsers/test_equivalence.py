"""Every parser gives what the standard-library reference gives: the same reading, the same CSV row,
the same reason for a refused line (a corpus of valid and invalid lines, then generated ones)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from whc.columns import NAMES, SENSOR_COLUMNS
from whc.exc import ProtocolError
from whc.parsers import PARSERS, load
from whc.parsers.stdlib import reference
from whc.storage.sinks.csv import CsvSink
from whc.storage.sinks.postgres import copy_line

RECV_TIME = "2026-11-24T12:00:00.000000Z"
VALID = b'{"time":"2026-11-24T12:00:00.123456Z","sh_id":"rpi01","ori_r":1.5,"acc_y":-0.99,"session":"s1","seq":7}'

CORPUS = [
    VALID,
    VALID.replace(b"-0.99", b"-0"),  # an int -0 must stay -0
    VALID.replace(b'"seq":7', b'"seq":0'),
    VALID.replace(b'"seq":7', b'"seq":-0'),
    VALID.replace(b'"seq":7', b'"seq":0').replace(b"-0.99", b"-0.0"),
    VALID.replace(b'"seq":7', b'"seq":9223372036854775807'),
    VALID.replace(b'"seq":7', b'"seq":9223372036854775808'),
    VALID.replace(b'"seq":7', b'"seq":12345678901234567'),
    VALID.replace(b'"seq":7', b'"seq":7.0'),
    VALID.replace(b'"seq":7', b'"seq":1e3'),
    VALID.replace(b'"seq":7', b'"seq":"7"'),
    VALID.replace(b'"seq":7', b'"seq":null'),
    VALID.replace(b'"session":"s1",', b""),
    VALID.replace(b',"seq":7', b""),
    VALID.replace(b'"session":"s1"', b'"session":null'),
    VALID.replace(b"1.5", b"15"),
    VALID.replace(b"1.5", b"-15"),
    VALID.replace(b"1.5", b"12345678901234567"),
    VALID.replace(b"1.5", b"123456789012345678"),
    VALID.replace(b"1.5", b"-1234567890123456"),
    VALID.replace(b"1.5", b"-12345678901234567"),
    VALID.replace(b"1.5", b"1" * 41),
    VALID.replace(b"1.5", b"1" * 400),
    VALID.replace(b"1.5", b"1.5e3"),
    VALID.replace(b"1.5", b"1.5E-3"),
    VALID.replace(b"1.5", b"1e999"),
    VALID.replace(b"1.5", b"1e-999"),
    VALID.replace(b"1.5", b"0e-999"),
    VALID.replace(b"1.5", b"0.00000000000000000001"),
    VALID.replace(b"1.5", b"NaN"),
    VALID.replace(b"1.5", b"-Infinity"),
    VALID.replace(b"1.5", b"null"),
    VALID.replace(b"1.5", b"true"),
    VALID.replace(b"1.5", b'"1.5"'),
    VALID.replace(b"1.5", b"[1.5]"),
    VALID.replace(b"1.5", b'{"a":1}'),
    VALID.replace(b"1.5", b"01"),
    VALID.replace(b"1.5", b"1."),
    VALID.replace(b"1.5", b".5"),
    VALID.replace(b"1.5", b"+1"),
    VALID.replace(b'"ori_r"', b'"vibration"'),  # extra
    VALID.replace(b'"ori_r"', b'"ori_r","ori_r"'),
    VALID.replace(b'"ori_r":1.5', b'"ori_r":1.5,"ori_r":2.5'),  # duplicate key: the last value wins
    VALID.replace(b'"ori_r":1.5', b'"sh_id":"rpi02"'),
    VALID.replace(b'"ori_r"', b'"ori\\u005fr"'),  # an escaped known key
    VALID.replace(b'"ori_r"', b'"recv_time"'),
    VALID.replace(b'"ori_r"', b'"hello"'),
    VALID.replace(b'"ori_r"', b'"bad\\u0000key"'),
    VALID.replace(b'"ori_r"', b'"\\ud800"'),
    VALID.replace(b'"ori_r"', b'"\xc3\xa9t\xc3\xa9"'),
    VALID.replace(b"rpi01", b"rpi 01"),
    VALID.replace(b"rpi01", b"rpi\\u0030"),
    VALID.replace(b"rpi01", b"\\ud800"),
    VALID.replace(b"rpi01", b"r\xc3\xa9"),
    VALID.replace(b"rpi01", b"x\xff"),
    VALID.replace(b'"rpi01"', b"5"),
    VALID.replace(b'"rpi01"', b"null"),
    VALID.replace(b"s1", b"-s1"),
    VALID.replace(b"s1", b"s" * 65),
    VALID.replace(b"2026-11-24T12:00:00.123456Z", b"2026-11-24T12:00:00Z"),
    VALID.replace(b"2026-11-24T12:00:00.123456Z", b"2026-11-24T13:00:00.123456+01:00"),
    VALID.replace(b"2026-11-24T12:00:00.123456Z", b"2026-02-30T12:00:00.123456Z"),
    VALID.replace(b"2026-11-24T12:00:00.123456Z", b"2026-11-24T24:00:00.123456Z"),
    VALID.replace(b"2026-11-24T12:00:00.123456Z", b"2026-11-24T12:60:00.123456Z"),
    VALID.replace(b"2026-11-24T12:00:00.123456Z", b"2026-11-24T12:00:60.123456Z"),
    VALID.replace(b"2026-11-24T12:00:00.123456Z", b"2026-W48-2T12:00:00.123456Z"),
    VALID.replace(b"2026-11-24T12:00:00.123456Z", b"2026-11-24T12:00:00.12345\\u0036Z"),
    VALID.replace(b"2026-11-24T12:00:00.123456Z", b"2026-11-24T12:00:00"),
    VALID.replace(b"2026-11-24T12:00:00.123456Z", b"yesterday"),
    VALID.replace(b'"2026-11-24T12:00:00.123456Z"', b"1700000000"),
    VALID.replace(b'"2026-11-24T12:00:00.123456Z"', b"1700000000.5"),
    VALID.replace(b'"2026-11-24T12:00:00.123456Z"', b"null"),
    VALID.replace(b'"time":"2026-11-24T12:00:00.123456Z",', b""),
    b" \t" + VALID + b" \r ",
    VALID.replace(b",", b" ,\n "),
    b"\xef\xbb\xbf" + VALID,  # a BOM
    VALID + VALID,  # two objects on one line
    VALID + b" x",
    VALID[:-1],
    VALID[:-1] + b",}",
    b"{}",
    b"[]",
    b"[1, 2]",
    b'"text"',
    b"5",
    b"null",
    b"",
    b"\xff\xfe",
    b'{"sh_id": "a"}',
    b'{"sh_id": "a", "acc_x": 1e400}',
    b'{"sh_id": "a", "acc_x": 1e-400}',
    b'{"sh_id": "a", "col_r": 255, "col_g": 0, "col_b": -3, "col_c": 12345678901234567}',
    b'{"sh_id": "a", "col_r": 255, "gyr_x": -0.5, "col_g": 0}',
    b'{"sh_id": "a", "col_r": 255, "gyr_x": -0}',
    b'{"sh_id": "a", "acc_x": true, "col_r": 2}',
    b'{"sh_id": "a", "col_r": 2, "acc_x": "2"}',
    b'{"sh_id": "a", "src_ip": "1.2.3.4"}',
    # Numbers arrive as plain text in the fast path: a string must never pass for a number, or the reverse.
    b'{"sh_id":"rpi01","session":1.5,"seq":1,"ori_r":"2.5"}',
    b'{"sh_id":"1.5","session":1.5,"seq":1,"seq":2}',
    b'{"sh_id":"rpi01","session":15,"seq":1}',
    b'{"sh_id":"15","ori_r":1}',  # an id that looks like a number is still an id
    b'{"sh_id":"1e5","session":"2.5","seq":3,"ori_r":1.5}',
    b'{"sh_id":"PiE01","session":"sE","seq":3,"ori_r":1.5}',
    b'{"sh_id":"rpi01","session":"s1","seq":"7","ori_r":7}',
    b'{"sh_id" :"rpi01","ori_r":1, "ori_r" :"x"}',
    b'{"sh_id":"rpi01","ori_r":1,"ori_r":"x","acc_x":2}',
    b'{"sh_id":"rpi01","ori_r":"x","ori_r":1}',
    b'{"sh_id":"rpi01","time":"2026-11-24T12:00:00.abcdefZ"}',  # its second is known valid by now
    b'{"sh_id":"rpi01","time":"2026-11-24T12:00:00.123456Zx"}',
    '{"sh_id":"rpi01","time":"2026-11-24T12:00:00.\u0661\u0662\u0663\u0664\u0665\u0666Z"}'.encode(),
    '{"sh_id":"rpi01","time":"2026-11-24T12:00:00.١٢٣٤٥٦Z"}'.encode(),
    '{"sh_id":"rpi01","session":"s1","seq":١٢}'.encode(),
    b'{"sh_id":"rpi01","session":"s1","seq":1234567890123456789}',
    b'{"sh_id":"rpi01","session":"s1","seq":9999999999999999999}',
    b'{"sh_id":"rpi01","acc_x":123456789012345678901234567890}',
    b'{"sh_id":"rpi01","acc_x":-0,"col_r":0}',
    b'{"sh_id":"rpi01","acc_x":-0.0,"col_r":0}',
    b'{"sh_id":"rpi01","acc_x":false}',
    b'{"sh_id":"rpi01","acc_x":1,"gyr_x":"1"}',
    b'{"sh_id":"rpi01","time":null,"acc_x":1}',
    b'{"sh_id":"rpi01","acc_x":1}\r',
    b'{"sh_id":"rpi01","acc_x":1} ',
    b"[" * 100_000,  # deep nesting
    b'{"a":' * 2000 + b"1" + b"}" * 2000,
]


def outcome(parse, line: bytes) -> tuple:
    """What a parser makes of a line: the reading with its CSV row and COPY line, or the refusal."""
    try:
        reading = parse(line, RECV_TIME, "127.0.0.1")
    except ProtocolError as exc:
        return "refused", str(exc)
    except Exception as exc:  # noqa: BLE001 - must be the same for both, too
        return "raised", type(exc).__name__
    return "stored", dict(reading), CsvSink.encode(reading), copy_line(reading)


@pytest.fixture(params=sorted(PARSERS))
def parse(request):
    return load(request.param).parse


@pytest.mark.parametrize("line", CORPUS, ids=range(len(CORPUS)))
def test_corpus_line_gives_what_the_reference_gives(parse, line: bytes) -> None:
    assert outcome(parse, line) == outcome(reference, line)


def test_the_corpus_has_both_outcomes_and_the_fast_path_is_taken(parse) -> None:
    kinds = {outcome(reference, line)[0] for line in CORPUS}
    assert kinds == {"stored", "refused"}, "nothing raises: even deep nesting is refused with a reason"
    reading = parse(VALID, RECV_TIME, "127.0.0.1")
    assert reading["seq"] == 7 and reading["ori_r"] == "1.5" and reading["time"] == "2026-11-24T12:00:00.123456Z"


JSON_NUMBERS = st.from_regex(r"\A-?(0|[1-9][0-9]{0,20})(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,4})?\Z")
VALUES = (JSON_NUMBERS | st.sampled_from(["null", "true", "false", '"1.5"', '"rpi01"', '"s1"', "[]", "{}", "NaN",
                                          '"2026-11-24T12:00:00.123456Z"', '"2026-11-24T12:00:00Z"',
                                          '"2026-02-29T12:00:00.123456Z"', "-0", "0", "-0.0", "01", "1.", "-"])
          | st.text(max_size=8).map(json.dumps))
KEYS = st.sampled_from([*NAMES, "hello", "vibration", "ori\\u005fr"]) | st.text(max_size=6)
SEPARATORS = st.sampled_from([",", ", ", " ,\t", ",\r\n"])


@st.composite
def objects(draw) -> bytes:
    """Near-valid readings written by hand, so numbers keep any form JSON allows."""
    pairs = {"sh_id": draw(st.sampled_from(['"rpi01"', '"rpi01"', '"rpi01"', '"x"', '"bad id"', "5"]))}
    for key in draw(st.lists(st.sampled_from(SENSOR_COLUMNS), max_size=6)):
        pairs[key] = draw(JSON_NUMBERS) if draw(st.integers(0, 9)) < 8 else draw(VALUES)
    if draw(st.booleans()):
        pairs["session"] = draw(st.sampled_from(['"s1"', '"s 1"', "null"]))
        pairs["seq"] = draw(st.sampled_from(["0", "-0", "7", "9223372036854775808", "1.0", '"3"']) | JSON_NUMBERS)
    if draw(st.booleans()):
        pairs["time"] = draw(VALUES)
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        pairs[draw(KEYS)] = draw(VALUES)
    items = list(pairs.items())
    draw(st.randoms()).shuffle(items)
    body = draw(SEPARATORS).join(f"{_key(k)}:{v}" for k, v in items)
    return ("{" + body + "}").encode("utf-8", "surrogatepass")


def _key(key: str) -> str:
    """A key as JSON; one already holding an escape is written as it is."""
    return f'"{key}"' if "\\u" in key else json.dumps(key)


LINES = objects() | st.binary(max_size=120) | st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass"))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=LINES)
def test_generated_lines_give_what_the_reference_gives(line: bytes) -> None:
    expected = outcome(reference, line)
    for name in sorted(PARSERS):
        assert outcome(load(name).parse, line) == expected, name


def test_cells_are_in_column_order_with_null_for_missing_and_none() -> None:
    reading = reference(VALID.replace(b'"acc_y":-0.99', b'"acc_y":null'), RECV_TIME, "10.0.0.1")
    row = CsvSink.encode(reading)[2]
    expected = {"time": "2026-11-24T12:00:00.123456Z", "sh_id": "rpi01", "ori_r": "1.5", "seq": "7", "session": "s1",
                "recv_time": RECV_TIME, "src_ip": "10.0.0.1"}
    assert row == ",".join(expected.get(name, "") for name in NAMES) + "\n"
    assert copy_line(reading) == "\t".join(expected.get(name, "\\N") for name in NAMES) + "\n"


@pytest.fixture(params=sorted(PARSERS))
def parser(request):
    return load(request.param)


def test_a_chunk_of_plain_lines_is_taken_at_once_and_gives_what_each_line_gives(parser) -> None:
    lines = [VALID, VALID.replace(b'"seq":7', b'"seq":8'), VALID.replace(b"1.5", b"null"),
             VALID.replace(b"1.5", b"1.234e-05"), VALID.replace(b",", b", ").replace(b'":', b'": ')]
    assert parser.parse_many(lines, RECV_TIME, "127.0.0.1") == [reference(line, RECV_TIME, "127.0.0.1")
                                                                  for line in lines]


def test_a_chunk_is_taken_up_to_its_first_line_that_is_not_plain(parser) -> None:
    odd = VALID.replace(b'"ori_r"', b'"vibration"')  # stored, with extra: not the fast path's
    taken = parser.parse_many([VALID, odd, VALID], RECV_TIME, "127.0.0.1")
    assert taken == [reference(VALID, RECV_TIME, "127.0.0.1")]
    assert parser.parse_many([b"", VALID], RECV_TIME, "127.0.0.1") == []


@pytest.mark.parametrize("line", CORPUS, ids=range(len(CORPUS)))
def test_a_chunk_takes_a_line_only_as_the_reference_stores_it(parser, line: bytes) -> None:
    taken = parser.parse_many([VALID, line, VALID], RECV_TIME, "127.0.0.1")
    assert 1 <= len(taken) <= 3
    expected = [outcome(reference, seen) for seen in (VALID, line, VALID)][:len(taken)]
    assert [("stored", dict(r), CsvSink.encode(r), copy_line(r)) for r in taken] == expected


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunk=st.lists(LINES, min_size=1, max_size=4))
def test_generated_chunks_are_taken_only_as_each_line_would_be(chunk: list[bytes]) -> None:
    for name in sorted(PARSERS):
        taken = load(name).parse_many(chunk, RECV_TIME, "127.0.0.1")
        assert [("stored", dict(r), CsvSink.encode(r), copy_line(r)) for r in taken] == \
            [outcome(reference, line) for line in chunk[:len(taken)]], name

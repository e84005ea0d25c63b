"""The line parser: what it accepts, how it normalises, and the reason it gives for refusing."""

from __future__ import annotations

import pytest

from whc import framing, protocol
from whc.exc import ProtocolError
from whc.parsers import load


@pytest.fixture
def parse(parser_name: str):
    """Parse a line with each parser in turn (whc/parsers), as the server would."""
    parser = load(parser_name)
    return lambda line: parser.parse(line, "2026-01-01T00:00:00.000000Z", "127.0.0.1")


def test_valid_reading_keeps_values_and_adds_server_fields(parse) -> None:
    row = parse(b'{"sh_id": "rpi01", "acc_x": 0.5, "gyr_z": -3, "ori_r": null, "session": "s", "seq": 7}')
    assert row["acc_x"] == "0.5" and row["gyr_z"] == "-3" and row["ori_r"] is None, "numbers keep their text"
    assert (row["session"], row["seq"]) == ("s", 7)
    assert row["time"] == row["recv_time"] == "2026-01-01T00:00:00.000000Z"
    assert row["src_ip"] == "127.0.0.1"


def test_time_is_normalised_to_utc_with_microseconds(parse) -> None:
    assert parse(b'{"sh_id": "a", "time": "2026-03-01T01:30:00+01:00"}')["time"] == "2026-03-01T00:30:00.000000Z"
    assert parse(b'{"sh_id": "a", "time": "2026-03-01T00:30:00.123456Z"}')["time"] == "2026-03-01T00:30:00.123456Z"
    # found in review: an ISO week date of the canonical length must be normalised too
    assert parse(b'{"sh_id": "a", "time": "2026-W48-2T12:00:00.123456Z"}')["time"] == "2026-11-24T12:00:00.123456Z"


def test_time_may_be_unix_seconds_stored_in_the_iso_form(parse) -> None:
    assert parse(b'{"sh_id": "a", "time": 1764072000.25}')["time"] == "2025-11-25T12:00:00.250000Z"
    assert parse(b'{"sh_id": "a", "time": 1764072000}')["time"] == "2025-11-25T12:00:00.000000Z"
    tie = parse(b'{"sh_id": "a", "time": 1.7640720001234565e9}')["time"]
    assert tie == "2025-11-25T12:00:00.123456Z", "ties to even"
    assert parse(b'{"sh_id": "a", "time": 0}')["time"] == "1970-01-01T00:00:00.000000Z"
    assert parse(b'{"sh_id": "a", "time": 253402300799.999999}')["time"] == "9999-12-31T23:59:59.999999Z"


def test_a_string_that_is_exactly_a_json_number_is_stored_as_that_text(parse) -> None:
    row = parse(b'{"sh_id": "a", "acc_z": "0.998", "acc_x": "-1.50E+3", "gyr_x": "0", "vibration": "2.5"}')
    assert (row["acc_z"], row["acc_x"], row["gyr_x"]) == ("0.998", "-1.50E+3", "0")
    assert row["extra"] == '{"vibration":2.5}'


def test_split_line_cuts_objects_in_a_row_and_keeps_the_rest_as_one_piece() -> None:
    assert framing.split_line(b'{"a":1}{"b":2} \t{"c":{"d":"}{"}}') == [b'{"a":1}', b'{"b":2}', b'{"c":{"d":"}{"}}']
    assert framing.split_line(b'{"a":1}{"b":NaN}{"c":3}') == [b'{"a":1}', b'{"b":NaN}{"c":3}']
    assert framing.split_line(b'{"a":1} 5') == [b'{"a":1}', b"5"]
    assert framing.split_line(b'{"a":"\xc3\xa9"}{"b":"\xff"}') == [b'{"a":"\xc3\xa9"}', b'{"b":"\xff"}']
    for one_piece in (b'{"a":1}', b'{"a":1}  ', b'5 6', b'{"a":', b'x{"a":1}', b'{"a":NaN}{"b":1}'):
        assert framing.split_line(one_piece) is None, one_piece


def test_cut_objects_takes_only_complete_objects_off_the_front() -> None:
    assert framing.cut_objects(b'{"a":1}{"b":2}{"c":') == ([b'{"a":1}', b'{"b":2}'], b'{"c":')
    assert framing.cut_objects(b'{"a":1}\r') == ([b'{"a":1}'], b"")
    assert framing.cut_objects(b'{"a":"x}') == ([], b'{"a":"x}')
    assert framing.cut_objects(b'{"a":"\xc3') == ([], b'{"a":"\xc3'), "a character cut in two waits for the rest"


def test_unknown_numeric_keys_go_to_extra(parse) -> None:
    assert parse(b'{"sh_id": "a", "vibration": 1.25, "note": null}')["extra"] == '{"vibration":1.25,"note":null}'


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"sh_id": "a", "acc_x": 1', "invalid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (b'{"sh_id": "a", "acc_x": NaN}', "NaN is not allowed"),
        (b'{"sh_id": "a", "acc_x": Infinity}', "Infinity is not allowed"),
        (b'{"sh_id": "a", "acc_x": -Infinity}', "-Infinity is not allowed"),
        (b'{"acc_x": 1}', "sh_id missing"),
        (b'{"sh_id": "bad id"}', "sh_id 'bad id' invalid"),
        (b'{"sh_id": "-lead"}', "invalid"),
        (b'{"sh_id": "' + b"a" * 65 + b'"}', "invalid"),
        (b'{"sh_id": 5}', "invalid"),
        (b'{"sh_id": []}', "invalid"),  # found by the property tests: unhashable values
        (b'{"sh_id": "a", "session": {}, "seq": 1}', "session {} invalid"),
        (b'{"sh_id": "a", "acc_x": " 1.0"}', "must be a number or null, got string"),
        (b'{"sh_id": "a", "acc_x": "1.0 "}', "must be a number or null, got string"),
        (b'{"sh_id": "a", "acc_x": "+1"}', "must be a number or null, got string"),
        (b'{"sh_id": "a", "acc_x": "01"}', "must be a number or null, got string"),
        (b'{"sh_id": "a", "acc_x": "1."}', "must be a number or null, got string"),
        (b'{"sh_id": "a", "acc_x": ".5"}', "must be a number or null, got string"),
        (b'{"sh_id": "a", "acc_x": "NaN"}', "must be a number or null, got string"),
        (b'{"sh_id": "a", "acc_x": "0x10"}', "must be a number or null, got string"),
        (b'{"sh_id": "a", "acc_x": ""}', "must be a number or null, got string"),
        (b'{"sh_id": "a", "acc_x": "1e400"}', "out of range"),
        (b'{"sh_id": "a", "custom": "warm"}', "must be a number or null, got string"),
        (b'{"sh_id": "a", "acc_x": true}', "got boolean"),
        (b'{"sh_id": "a", "custom": [1]}', "got array"),
        (b'{"sh_id": "a", "acc_x": 1e999}', "Infinity is not allowed"),
        (b'{"sh_id": "a", "acc_x": 1e400}', "out of range"),
        (b'{"sh_id": "a", "acc_x": 1e-400}', "too small for a double"),
        (b'{"sh_id": "a", "bad\\u0000key": 1}', "has a NUL"),
        (b'{"sh_id": "a", "\\ud800": 1}', "unpaired surrogate"),
        (b'{"sh_id": "a", "acc_x": 1.00000000000000000000000000000000000000001}', "longer than 40"),
        (b'{"sh_id": "a", "seq": 1}', "session and seq must come together"),
        (b'{"sh_id": "a", "session": "s", "seq": -1}', "seq must be an integer >= 0"),
        (b'{"sh_id": "a", "session": "s", "seq": 1.5}', "seq must be an integer"),
        (b'{"sh_id": "a", "session": "no good", "seq": 1}', "session 'no good' invalid"),
        (b'{"sh_id": "a", "time": "yesterday"}', "not ISO 8601"),
        (b'{"sh_id": "a", "time": "2026-01-01T00:00:00"}', "no UTC offset"),
        (b'{"sh_id": "a", "time": true}', "time must be an ISO 8601 string or Unix seconds, got boolean"),
        (b'{"sh_id": "a", "time": -1}', "Unix seconds out of range"),
        (b'{"sh_id": "a", "time": 253402300800}', "Unix seconds out of range"),
        (b'{"sh_id": "a", "time": 1e30}', "Unix seconds out of range"),
        (b'{"sh_id": "a", "time": "1764072000"}', "not ISO 8601"),
        (b'{"sh_id": "a", "time": "9999-12-31T23:59:59-01:00"}', "out of range"),
        (b'{"sh_id": "a", "src_ip": "1.2.3.4"}', "set by the server"),
        (b'{"sh_id": "a", "hello": 1}', "only allowed as the first line"),
        (b'\xff\xfe{"sh_id": "a"}', "invalid UTF-8"),
        (b'{"sh_id": "a"} {"sh_id": "b"}', "Extra data"),  # decode_line takes one object; framing splits
        (b"[" * 50000, "invalid JSON: maximum recursion depth"),  # found while adding framing: was uncaught
    ],
)
def test_bad_lines_are_refused_with_a_reason(parse, line: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=None) as caught:
        parse(line)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_hello() -> None:
    def hello(line: bytes) -> protocol.Hello:
        return protocol.parse_hello(protocol.decode_line(line))

    assert hello(b'{"hello": 1, "acks": true}') == protocol.Hello(True, None)
    assert hello(b'{"hello": 1}') == protocol.Hello(False, None)
    assert hello(b'{"hello": 1, "sh_id": "rpi01", "token": "s3cret"}') == protocol.Hello(False, "rpi01", "s3cret")
    assert "s3cret" not in repr(hello(b'{"hello": 1, "token": "s3cret"}')), "the token never shows in logs"
    with pytest.raises(ProtocolError, match="token must be a string"):
        hello(b'{"hello": 1, "token": 5}')
    for line in (b'{"hello": 2}', b'{"hello": "1"}', b'{"hello": 1.0}'):
        with pytest.raises(ProtocolError, match="speaks protocol 1"):
            hello(line)
    with pytest.raises(ProtocolError, match="acks must be"):
        hello(b'{"hello": 1, "acks": "yes"}')


def test_replies_are_single_json_lines() -> None:
    assert protocol.encode_ack(12) == b'{"ack": 12}\n'
    assert protocol.encode_error('bad "x"', 3) == b'{"error": "bad \\"x\\"", "line": 3}\n'

"""Property-based tests: whatever a client sends, rows stay well-formed and the server stays up."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from fuzzing import check
from harness import ServerProcess, read_rows, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from whc.columns import NAMES
from whc.parsers import PARSERS

KEYS = st.sampled_from([*NAMES, "hello", "acks", "token"]) | st.text(max_size=12)
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=20) | st.sampled_from(["=1+2", "-cmd", "@SUM(A1)", "+1", "rpi01", "s1",
                                                     "2026-01-01T00:00:00Z", "2026-01-01T00:00:00"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5),
                                                                                            inner, max_size=3),
                      max_leaves=6)
OBJECTS = st.dictionaries(KEYS, VALUES, max_size=14)
VALID_ISH = st.fixed_dictionaries({"sh_id": st.sampled_from(["rpi01", "x", "bad id", "-x", ""])}, optional={
    "acc_x": st.floats(allow_nan=True, allow_infinity=True) | st.none() | st.text(max_size=3),
    "seq": st.integers(min_value=-2, max_value=2**64), "session": st.sampled_from(["s1", "bad session"]),
    "time": st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00+05:30", "nope", "2026-13-01T00:00:00Z"]),
    "vibration": SCALARS})


def encode(obj: object) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()


LINES = (OBJECTS.map(encode) | VALID_ISH.map(encode) | st.binary(max_size=200)
         | st.binary(max_size=40).map(lambda b: b'{"status"' + b)  # a status line, broken or not
         | st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")))


@st.composite
def streams(draw) -> list[bytes]:
    """Lines joined by \\n or \\r\\n (sometimes none), cut into chunks at arbitrary places."""
    lines = draw(st.lists(LINES, max_size=12))
    data = b"".join(line + draw(st.sampled_from([b"\n", b"\r\n", b""])) for line in lines)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@pytest.mark.parametrize("parser", sorted(PARSERS))
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=streams(), max_line_bytes=st.sampled_from([256, 1024, 65536]))
def test_line_handling_keeps_every_property(parser: str, chunks: list[bytes], max_line_bytes: int) -> None:
    check(chunks, max_line_bytes, parser)


@pytest.mark.parametrize("parser", sorted(PARSERS))
@given(lines=st.lists(VALID_ISH.map(encode), min_size=1, max_size=5))
def test_valid_readings_are_stored_with_their_values(parser: str, lines: list[bytes]) -> None:
    stored = check([b"\n".join(lines) + b"\n"], parser=parser)
    assert stored <= len(lines)


@pytest.fixture(scope="module", params=sorted(PARSERS))
def shared_server(tmp_path_factory, request) -> ServerProcess:
    server = ServerProcess(tmp_path_factory.mktemp("hostile"), max_line_bytes=1024, parser=request.param)
    server.start()
    assert f"parser: {request.param}" in server.log_text()
    yield server
    assert server.stop() == 0, "the server survived and stops cleanly"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=streams())
def test_real_server_takes_anything_and_stays_up(shared_server: ServerProcess, chunks: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", shared_server.port), timeout=10) as sock:
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server may close after an oversize line or a bad hello
    assert shared_server.proc.poll() is None


def test_real_server_csv_is_well_formed_after_the_campaign(shared_server: ServerProcess) -> None:
    """Runs after the campaign (file order): every row parses with the header's columns."""
    wait_for(lambda: shared_server.csv_path.exists(), what="the CSV")
    with socket.create_connection(("127.0.0.1", shared_server.port), timeout=10) as sock:
        sock.sendall(b'{"sh_id": "marker"}\n')
    rows = wait_for(lambda: [r for r in read_rows(shared_server.csv_path) if r["sh_id"] == "marker"] and
                    read_rows(shared_server.csv_path), what="the marker row")
    for row in rows:
        assert None not in row and None not in row.values(), "no row has more or fewer cells than the header"
    status = Path(f"/proc/{shared_server.proc.pid}/status").read_text()
    peak_mb = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024
    assert peak_mb < 100, f"memory stays bounded (peak RSS {peak_mb:.0f} MB)"

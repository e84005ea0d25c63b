"""The store-and-forward buffer on real files: order, acks, spill, restart, limits."""

from __future__ import annotations

import json
from pathlib import Path

from whc.buffering.buffer import Buffer


def make(folder: Path, max_bytes: int = 2**20, memory: int = 1000, fsync_interval: float = 60.0) -> Buffer:
    return Buffer(folder, max_bytes, memory, fsync_interval)


def seqs(lines: list[bytes]) -> list[int]:
    return [json.loads(line)["seq"] for line in lines]


def read_all(buffer: Buffer, position: int = 0) -> list[bytes]:
    """Everything from ``position`` on, as the forwarder reads it (spool segments, then memory)."""
    got: list[bytes] = []
    for _ in range(1000):
        _, lines = buffer.read(position + len(got), 7)
        if not lines:
            return got
        got.extend(lines)
    raise AssertionError("read did not end")


def fill(buffer: Buffer, count: int) -> None:
    for _ in range(count):
        buffer.add({"time": "2026-01-01T00:00:00.000000Z", "sh_id": "rpi01", "acc_x": 0.5})


def test_numbers_readings_and_reads_them_in_order(tmp_path: Path) -> None:
    buffer = make(tmp_path)
    fill(buffer, 10)
    _, lines = buffer.read(0, 100)
    assert seqs(lines) == list(range(10))
    assert {json.loads(line)["session"] for line in lines} == {buffer.session}
    assert seqs(buffer.read(4, 3)[1]) == [4, 5, 6]


def test_ack_removes_only_what_it_covers(tmp_path: Path) -> None:
    buffer = make(tmp_path)
    fill(buffer, 10)
    buffer.ack(6)
    assert buffer.backlog == 4
    assert seqs(buffer.read(0, 100)[1]) == [6, 7, 8, 9], "reads never go below what is acked"


def test_no_disk_writes_while_acks_keep_up(tmp_path: Path) -> None:
    buffer = make(tmp_path, fsync_interval=0.0)
    state_before = (tmp_path / "state.json").stat().st_mtime_ns
    for _ in range(20):
        fill(buffer, 5)
        buffer.ack(buffer.end)
        buffer.spill()
    assert not list(tmp_path.glob("seg-*"))
    assert (tmp_path / "state.json").stat().st_mtime_ns == state_before


def test_spill_then_read_across_spool_and_memory(tmp_path: Path) -> None:
    buffer = make(tmp_path)
    fill(buffer, 50)
    buffer.spill(spill_all=True)
    fill(buffer, 50)
    assert len(buffer.spool.segments) == 1
    assert seqs(read_all(buffer)) == list(range(100))
    buffer.ack(60)
    buffer.spill()
    assert not buffer.spool.segments, "acked segments are deleted"


def test_memory_limit_spills_oldest(tmp_path: Path) -> None:
    buffer = make(tmp_path, memory=30)
    fill(buffer, 100)
    buffer.spill()
    assert buffer.spool.end == 70 and len(buffer._memory) == 30
    assert seqs(buffer.read(0, 1000)[1])[:3] == [0, 1, 2]


def test_clean_restart_resumes_session_backlog_and_seq(tmp_path: Path) -> None:
    buffer = make(tmp_path)
    fill(buffer, 20)
    buffer.ack(5)
    buffer.close()
    again = make(tmp_path)
    assert again.session == buffer.session and again.next_seq == 20
    assert again.backlog == 15
    fill(again, 1)
    assert seqs(read_all(again, 5)) == list(range(5, 21))


def test_unclean_restart_keeps_spooled_readings_and_starts_a_new_session(tmp_path: Path) -> None:
    buffer = make(tmp_path)
    fill(buffer, 20)
    buffer.spill(spill_all=True)  # then "power cut": no close()
    segment = next(tmp_path.glob("seg-*"))
    with open(segment, "ab") as file:
        file.write(b'{"torn": ')
    again = make(tmp_path)
    assert again.session != buffer.session and again.next_seq == 0
    old = read_all(again)[:20]
    assert seqs(old) == list(range(20)) and json.loads(old[0])["session"] == buffer.session
    fill(again, 2)
    lines = read_all(again, 20)
    assert seqs(lines) == [0, 1] and json.loads(lines[0])["session"] == again.session


def test_full_spool_drops_oldest_and_counts(tmp_path: Path) -> None:
    buffer = make(tmp_path, max_bytes=2**16)
    for _ in range(12):
        fill(buffer, 100)
        buffer.spill(spill_all=True)
    assert buffer.spool.size <= 2**16
    assert buffer.dropped > 0
    remaining = seqs(read_all(buffer, buffer.acked))
    assert remaining[0] == buffer.dropped, "the oldest went first"
    assert buffer.dropped + buffer.backlog == 1200


def test_reading_the_spool_while_it_is_appended_never_sees_half_a_line(tmp_path: Path) -> None:
    """Found in review: a reader racing an append could take a torn line for a whole one."""
    import threading
    import time

    from whc.buffering.spool import Spool

    spool = Spool(tmp_path, 2**30)
    total, batch = 200_000, 2000

    def write() -> None:
        for first in range(0, total, batch):  # ~150 KB per append: a write the reader can catch halfway
            spool.append(first, [b'{"seq":%d,"pad":"%s"}\n' % (i, b"x" * 50) for i in range(first, first + batch)])

    writer = threading.Thread(target=write)
    writer.start()
    got: list[int] = []
    deadline = time.monotonic() + 30
    while len(got) < total and time.monotonic() < deadline:
        for line in spool.read(len(got), 5000, 2**20)[1]:
            assert line.endswith(b"\n")
            got.append(json.loads(line)["seq"])
    writer.join(10)
    assert got == list(range(total))


def test_a_spool_that_cannot_be_written_keeps_readings_in_memory_then_counts_drops(tmp_path: Path) -> None:
    """Found in review: a full or failing card raised out of flush() and stopped the sender."""
    buffer = make(tmp_path / "spool", memory=50)
    fill(buffer, 10)
    buffer.spill(spill_all=True)
    segment = buffer.spool.segments[0].path
    segment.unlink()
    segment.mkdir()  # appending to it now fails with a real OSError (root ignores permissions)
    fill(buffer, 40)
    buffer.spill(spill_all=True)  # must not raise
    assert buffer.disk_error is not None and buffer.dropped == 0
    fill(buffer, 30)
    assert len(buffer._memory) == 50 and buffer.dropped == 20, "beyond memory_readings, new ones are counted"
    (tmp_path / "spool" / "state.json").unlink()
    (tmp_path / "spool" / "state.json").mkdir()
    buffer.close()  # the state cannot be saved either: logged, not raised

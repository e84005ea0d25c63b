"""A damaged or unwritable spool, on real files: detected, skipped, counted exactly, set aside; never stuck."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from mounts import read_only, tmpfs

from whc.buffering import records
from whc.buffering.buffer import Buffer
from whc.buffering.spool import Spool
from whc.buffering.spoolcheck import describe_spool

TOTAL = 400


def make(folder: Path, max_bytes: int = 2**16, memory: int = 1000) -> Buffer:
    return Buffer(folder, max_bytes, memory, 60.0)  # 4 KiB segments: about 40 readings each


def read_all(buffer: Buffer) -> list[int]:
    """Every seq the forwarder would send, walking over lost positions as it does."""
    position, got = buffer.acked, []
    for _ in range(10000):
        start, lines = buffer.read(position, 7)
        if not lines:
            return got
        assert start >= position
        got += [json.loads(line)["seq"] for line in lines]
        position = start + len(lines)
    raise AssertionError("reading did not end")


def spooled(folder: Path, count: int = TOTAL) -> tuple[Buffer, list[Path]]:
    """A spool holding ``count`` readings of one session in several segments, stopped cleanly."""
    buffer = make(folder)
    for _ in range(count):
        buffer.add({"time": "2026-01-01T00:00:00.000000Z", "sh_id": "rpi01", "acc_x": 0.5})
        if buffer.end % 50 == 0:
            buffer.spill(spill_all=True)
    buffer.close()
    segments = sorted(folder.glob("seg-*.jsonl"))
    assert len(segments) >= count // 80
    return buffer, segments


def positions(segment: Path) -> list[tuple[int, int, int]]:
    """``(position, byte offset, length)`` of each record of an intact segment."""
    result, offset = [], 0
    for line in segment.read_bytes().splitlines(keepends=True):
        result.append((records.decode(line)[0], offset, len(line)))  # type: ignore[index]
        offset += len(line)
    return result


def reopen(folder: Path, lost: set[int], caplog: pytest.LogCaptureFixture) -> Buffer:
    """Start again on the damaged spool; everything but ``lost`` arrives once; the loss is counted and logged."""
    caplog.clear()
    with caplog.at_level(logging.INFO):
        buffer = make(folder)
        assert read_all(buffer) == sorted(set(range(TOTAL)) - lost)
    assert buffer.dropped == len(lost)
    text = caplog.text
    summaries = [r.message for r in caplog.records if r.message.startswith("spool check:")]
    assert len(summaries) == 1, "one line says what the check found"
    if lost:
        assert "DAMAGED" in summaries[0] and f"{len(lost)} readings lost" in summaries[0]
        assert "spool damaged: dropped" in text and f"{len(lost)} dropped in all" in text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = make(folder)
    assert again.dropped == 0, "damage counted once: the next start knows it"
    assert "spool check: clean" in caplog.text
    text, damaged = describe_spool(folder)
    assert not damaged and (not lost or "earlier damage:" in text), text
    assert read_all(again) == sorted(set(range(TOTAL)) - lost)
    return buffer


def test_torn_tail(tmp_path: Path, caplog) -> None:
    _, segments = spooled(tmp_path)
    *_, (last, offset, length) = positions(segments[-1])
    os.truncate(segments[-1], offset + length // 2)
    reopen(tmp_path, {last}, caplog)
    assert list((tmp_path / "damaged").iterdir()), "the torn bytes are set aside"


def test_garbage_appended_costs_nothing(tmp_path: Path, caplog) -> None:
    _, segments = spooled(tmp_path)
    with open(segments[2], "ab") as file:
        file.write(b"\x00\xffgarbage{\"seq\": 1}\nmore")
    reopen(tmp_path, set(), caplog)
    assert b"garbage" in b"".join(p.read_bytes() for p in (tmp_path / "damaged").iterdir())


def test_newline_flipped(tmp_path: Path, caplog) -> None:
    _, segments = spooled(tmp_path)
    records_ = positions(segments[1])
    position, offset, length = records_[5]
    data = bytearray(segments[1].read_bytes())
    data[offset + length - 1] = ord(" ")  # two records become one line
    segments[1].write_bytes(data)
    reopen(tmp_path, {position, position + 1}, caplog)


def test_zero_filled_block(tmp_path: Path, caplog) -> None:
    _, segments = spooled(tmp_path)
    records_ = positions(segments[2])
    start = records_[3][1] + 10
    stop = records_[9][1] + 10
    with open(segments[2], "r+b") as file:
        file.seek(start)
        file.write(bytes(stop - start))
    reopen(tmp_path, {p for p, _, _ in records_[3:10]}, caplog)


def test_zeroed_segment_in_the_middle_and_at_the_end(tmp_path: Path, caplog) -> None:
    _, segments = spooled(tmp_path)
    lost = set()
    for segment in (segments[2], segments[-1]):
        lost |= {p for p, _, _ in positions(segment)}
        segment.write_bytes(bytes(segment.stat().st_size))
    reopen(tmp_path, lost, caplog)
    assert not segments[2].exists() and len(list((tmp_path / "damaged").iterdir())) == 2


def test_deleted_segments_first_middle_and_last(tmp_path: Path, caplog) -> None:
    _, segments = spooled(tmp_path)
    lost = set()
    for segment in (segments[0], segments[2], segments[-1]):
        lost |= {p for p, _, _ in positions(segment)}
        segment.unlink()
    reopen(tmp_path, lost, caplog)


@pytest.mark.parametrize("damage", ["deleted", "garbled"])
def test_lost_state_starts_a_new_session_and_loses_nothing(tmp_path: Path, caplog, damage: str) -> None:
    first, _ = spooled(tmp_path)
    state = tmp_path / "state.json"
    state.unlink() if damage == "deleted" else state.write_bytes(b'{"session": "ab", "next_seq": 1\x00\x00')
    caplog.clear()
    with caplog.at_level(logging.INFO):
        buffer = make(tmp_path)
    assert buffer.session != first.session and buffer.next_seq == 0
    assert any(r.levelno == logging.WARNING and "spool state lost" in r.message for r in caplog.records)
    assert read_all(buffer) == list(range(TOTAL)) and buffer.dropped == 0


def test_state_older_than_the_spool_never_reuses_seq_numbers(tmp_path: Path, caplog) -> None:
    """A power cut that brings back an older clean state: the spool shows seqs the state does not know."""
    first, _ = spooled(tmp_path, 100)
    old = (tmp_path / "state.json").read_bytes()
    again = make(tmp_path)
    assert again.session == first.session
    for _ in range(300):
        again.add({"sh_id": "rpi01"})
    again.spill(spill_all=True)  # then the power goes and state.json comes back as it was
    (tmp_path / "state.json").write_bytes(old)
    with caplog.at_level(logging.WARNING):
        third = make(tmp_path)
    assert third.session != first.session and "older than the spool" in caplog.text
    assert read_all(third) == list(range(TOTAL))


def test_a_start_that_cannot_record_itself_does_not_reuse_the_session(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "spool", "1m") as folder:
        first, _ = spooled(folder, 100)
        read_only(folder)
        again = make(folder)
        assert again.session != first.session and again.next_seq == 0
        assert again.disk_error is not None
        assert read_all(again) == list(range(100)), "a read-only spool is still read"


def test_damage_found_while_running_is_skipped_and_counted(tmp_path: Path) -> None:
    buffer, segments = spooled(tmp_path)
    buffer = make(tmp_path)
    records_ = positions(segments[3])
    with open(segments[3], "r+b") as file:
        file.seek(records_[4][1] + 3)
        file.write(b"XX")
    assert read_all(buffer) == [n for n in range(TOTAL) if n != records_[4][0]]
    assert buffer.dropped == 1
    assert read_all(buffer) == [n for n in range(TOTAL) if n != records_[4][0]] and buffer.dropped == 1


def test_first_format_segments_are_still_read(tmp_path: Path, caplog) -> None:
    tmp_path.joinpath("seg-00000000000000000000.jsonl").write_bytes(
        b"".join(b'{"session":"old","seq":%d}\n' % n for n in range(10)) + b'{"sess')
    tmp_path.joinpath("state.json").write_text('{"session":"old","next_seq":10,"acked":0,"clean":true}')
    buffer = make(tmp_path)
    assert read_all(buffer) == list(range(10)) and buffer.dropped == 0
    assert buffer.session == "old" and buffer.next_seq == 10
    assert records.decode(next(tmp_path.glob("seg-*")).read_bytes().splitlines(keepends=True)[0])


def test_check_spool_reports_and_changes_nothing(tmp_path: Path) -> None:
    _, segments = spooled(tmp_path)
    text, damaged = describe_spool(tmp_path)
    assert not damaged and f"{TOTAL} readings waiting" in text and "2026-01-01T00:00:00" in text
    segments[1].write_bytes(bytes(100) + segments[1].read_bytes()[100:])
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    text, damaged = describe_spool(tmp_path)
    assert damaged and "damage:" in text and segments[1].name in text
    assert before == {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}


def test_a_read_only_spool_keeps_readings_in_memory_and_recovers(tmp_path: Path, caplog) -> None:
    with tmpfs(tmp_path / "spool", "1m") as folder:
        buffer = make(folder, memory=100)
        for _ in range(150):
            buffer.add({"sh_id": "rpi01"})
        buffer.spill(spill_all=True)
        read_only(folder)
        buffer.ack(120)  # the acknowledged segment cannot be deleted: retried, never raised
        for _ in range(100):
            buffer.add({"sh_id": "rpi01"})
        buffer.spill(spill_all=True)
        assert buffer.disk_error is not None and len(buffer._memory) == 100 and buffer.dropped == 0
        for _ in range(10):
            buffer.add({"sh_id": "rpi01"})
        assert buffer.dropped == 10, "beyond memory_readings, new ones are counted"
        read_only(folder, False)
        with caplog.at_level(logging.WARNING):
            buffer.spill(spill_all=True)
        assert buffer.disk_error is None and "spool works again" in caplog.text
        assert read_all(buffer) == list(range(120, 250))
        buffer.close()
        assert json.loads((folder / "state.json").read_text())["clean"]


def test_a_full_spool_file_system_is_no_crash(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "spool", "64k") as folder:
        buffer = make(folder, max_bytes=2**30, memory=50)
        for _ in range(2000):
            buffer.add({"sh_id": "rpi01", "pad": "x" * 100})
            if buffer.end % 100 == 0:
                buffer.spill(spill_all=True)
        assert buffer.disk_error is not None and "No space" in buffer.disk_error
        assert buffer.dropped > 0
        got = read_all(buffer)
        assert len(got) + buffer.dropped == 2000 and got == sorted(set(got))
        buffer.close()


def test_spool_append_after_a_failed_write_cuts_its_partial_bytes(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 2**20)
    spool.append(0, [b'{"seq":0}\n'])
    with open(spool.segments[0].path, "ab") as file:
        file.write(b"half a rec")  # what a write cut short by EIO leaves
    spool.append(1, [b'{"seq":1}\n'])
    assert spool.read(0, 10, 2**20) == (0, [b'{"seq":0}\n', b'{"seq":1}\n'])
    assert b"half" not in spool.segments[0].path.read_bytes()


def test_a_failed_final_spill_is_counted_and_not_called_clean(tmp_path: Path, caplog) -> None:
    with tmpfs(tmp_path / "spool", "1m") as folder:
        buffer = make(folder)
        for _ in range(30):
            buffer.add({"sh_id": "rpi01"})
        read_only(folder)
        with caplog.at_level(logging.ERROR):
            buffer.close()
        assert buffer.dropped == 30 and buffer.waiting == 0
        assert "could not spool the last 30 unacknowledged readings" in caplog.text
        read_only(folder, False)
        assert json.loads((folder / "state.json").read_text())["clean"] is False
        assert make(folder).session != buffer.session

"""A damaged or failing SD card under a real sender (emulator) and a real server: the unit keeps going.

Each damage case: the server is away while the sender spools, the sender stops, the spool is damaged,
then server and sender start again. Every undamaged reading must reach the CSV exactly once, the
dropped count must equal what the damage destroyed, and the log must say what happened.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import PYTHON, ROOT, SenderProcess, ServerProcess, wait_for
from mounts import read_only, tmpfs

from whc.buffering import records

Key = tuple[str, int]  # (session, seq)


def intact(spool: Path) -> dict[int, Key]:
    """Position -> (session, seq) of every record in the spool that passes its check."""
    found = {}
    for segment in sorted(spool.glob("seg-*.jsonl")):
        for line in segment.read_bytes().splitlines(keepends=True):
            record = records.decode(line)
            if record is not None:
                reading = json.loads(record[1])
                found[record[0]] = (reading["session"], reading["seq"])
    return found


def layout(segment: Path) -> list[tuple[int, int, int]]:
    """``(position, byte offset, length)`` of each record of an intact segment."""
    result, offset = [], 0
    for line in segment.read_bytes().splitlines(keepends=True):
        result.append((records.decode(line)[0], offset, len(line)))  # type: ignore[index]
        offset += len(line)
    return result


def segments(spool: Path) -> list[Path]:
    return sorted(spool.glob("seg-*.jsonl"))


# --- damage: each returns the positions it destroyed --------------------------------------------
def torn_tail(spool: Path) -> set[int]:
    last = segments(spool)[-1]
    position, offset, length = layout(last)[-1]
    os.truncate(last, offset + length // 2)
    return {position}


def garbage_appended(spool: Path) -> set[int]:
    with open(segments(spool)[2], "ab") as file:
        file.write(b"\x00\xff not a record {\"seq\": 3}\n\x13\x37")
    return set()


def newline_flipped(spool: Path) -> set[int]:
    segment = segments(spool)[1]
    (first, offset, length), (second, _, _) = layout(segment)[5:7]
    data = bytearray(segment.read_bytes())
    data[offset + length - 1] = ord(" ")
    segment.write_bytes(data)
    return {first, second}


def zero_filled_block(spool: Path) -> set[int]:
    segment = segments(spool)[2]
    records_ = layout(segment)
    start, stop = records_[3][1] + 10, records_[9][1] + 10
    with open(segment, "r+b") as file:
        file.seek(start)
        file.write(bytes(stop - start))
    return {position for position, _, _ in records_[3:10]}


def zeroed_segment(spool: Path) -> set[int]:
    segment = segments(spool)[2]
    lost = {position for position, _, _ in layout(segment)}
    segment.write_bytes(bytes(segment.stat().st_size))
    return lost


def deleted_middle_segment(spool: Path) -> set[int]:
    segment = segments(spool)[2]
    lost = {position for position, _, _ in layout(segment)}
    segment.unlink()
    return lost


def state_deleted(spool: Path) -> set[int]:
    (spool / "state.json").unlink()
    return set()


def state_garbled(spool: Path) -> set[int]:
    (spool / "state.json").write_bytes(b'{"session": "5f\x00\x00\x00')
    return set()


DAMAGE: list[Callable[[Path], set[int]]] = [torn_tail, garbage_appended, newline_flipped, zero_filled_block,
                                            zeroed_segment, deleted_middle_segment, state_deleted, state_garbled]


def keys(rows: list[dict[str, str]]) -> Counter[Key]:
    return Counter((r["session"], int(r["seq"])) for r in rows if r["session"])


def dropped_in(log: str) -> int:
    """The dropped count of the sender's last 'stopped' line."""
    return int(re.findall(r"stopped; .* (\d+) dropped", log)[-1])


def assert_session_complete(sender: SenderProcess, server: ServerProcess, lost: set[Key] = frozenset()) -> None:
    """The last run's session: every seq stored once, or still spooled, or ``lost``."""
    state = sender.spool_state()
    stored = keys(server.rows())
    assert max(stored.values()) == 1, "no reading twice"
    mine = {seq for session, seq in stored if session == state["session"]}
    waiting = {r["seq"] for r in sender.spooled() if r["session"] == state["session"]}
    gone = {seq for session, seq in lost if session == state["session"]}
    assert not mine & gone, "a destroyed reading never arrives"
    assert mine | waiting | gone == set(range(state["next_seq"]))


def spool_while_server_away(server_factory, sender_factory, count: int = 6, **settings) -> tuple:
    server = server_factory(start=False, unit="rpi01", interval=0.005, fsync_interval=0.2, spool_max_bytes=2**16,
                            stats_interval=0.5, **settings)
    sender = sender_factory(server.config_path).start()
    spool = server.folder / settings.get("spool_dir", "spool")
    wait_for(lambda: len(segments(spool)) >= count, 60, what=f"{count} spool segments")
    return server, sender, spool


CASES = [(damage, signal.SIGTERM) for damage in DAMAGE] + [(newline_flipped, signal.SIGKILL),
                                                           (deleted_middle_segment, signal.SIGKILL)]


@pytest.mark.parametrize(("damage", "stop"), CASES, ids=[f"{d.__name__}-{s.name}" for d, s in CASES])
def test_damaged_spool(server_factory, sender_factory, damage: Callable[[Path], set[int]], stop: int) -> None:
    server, sender, spool = spool_while_server_away(server_factory, sender_factory)
    sender.stop(stop)  # SIGTERM: a clean stop; SIGKILL: as a crash or power cut leaves it
    before = intact(spool)
    destroyed = damage(spool)
    expected = Counter(key for position, key in before.items() if position not in destroyed)
    log_from = len(sender.log_text())
    server.start()
    sender.start()
    wait_for(lambda: expected <= keys(server.rows()) and len(server.rows()) > len(expected) + 20, 60,
             what="every undamaged reading in the CSV, and new ones")
    assert sender.proc is not None and sender.proc.poll() is None, "the sender keeps running"
    assert sender.stop() == 0
    log = sender.log_text()[log_from:]
    stored = keys(server.rows())
    assert {key: stored[key] for key in before.values() if stored[key]} == expected, \
        "every undamaged reading exactly once, no destroyed one"
    assert dropped_in(log) == len(destroyed)
    (summary,) = re.findall(r"spool check: .*", log)
    if destroyed:
        assert "DAMAGED" in summary and f"{len(destroyed)} readings lost" in summary
        assert re.search(rf"spool damaged: dropped \d+ readings .* in .*seg-\d+\.jsonl.*; {len(destroyed)} dropped",
                         log)
    if damage in (state_deleted, state_garbled):
        assert "WARNING" in log and "spool state lost" in log and "new session" in log
    if damage in (torn_tail, garbage_appended, newline_flipped, zero_filled_block, zeroed_segment):
        assert list((spool / "damaged").iterdir()), "damaged bytes are set aside, not deleted"
    assert_session_complete(sender, server, {before[p] for p in destroyed})


def test_check_spool_reports_damage_and_changes_nothing(server_factory, sender_factory) -> None:
    server, sender, spool = spool_while_server_away(server_factory, sender_factory)
    assert sender.stop() == 0
    clean = check_spool(server.config_path)
    assert clean.returncode == 0 and "result: clean" in clean.stdout and "readings waiting" in clean.stdout
    destroyed = zeroed_segment(spool)
    files = {p: p.read_bytes() for p in spool.rglob("*") if p.is_file()}
    damaged = check_spool(server.config_path)
    assert damaged.returncode == 1 and f"damage: {len(destroyed)} readings" in damaged.stdout
    assert "oldest: 20" in damaged.stdout and "sessions: " in damaged.stdout
    assert files == {p: p.read_bytes() for p in spool.rglob("*") if p.is_file()}, "nothing changed"


def test_read_only_spool_keeps_the_sender_going_and_it_recovers(server_factory, sender_factory, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "card", "8m") as card:
        server, sender, _ = spool_while_server_away(server_factory, sender_factory, 3, spool_dir="card",
                                                    memory_readings=60)
        read_only(card)
        wait_for(lambda: "SPOOL WRITE FAILING" in sender.log_text(), 20, what="the failure noticed")
        wait_for(lambda: re.search(r"dropped=[1-9].*spool=failing", sender.log_text()), 20,
                 what="readings beyond memory_readings counted, stats line saying so")
        server.start()
        wait_for(lambda: re.search(r"acked_backlog=\d\d? .*connected=True spool=failing", sender.log_text()), 30,
                 what="the backlog delivered while the card is read-only")
        assert sender.proc is not None and sender.proc.poll() is None
        read_only(card, False)
        wait_for(lambda: "spool works again" in sender.log_text(), 20, what="recovery")
        assert sender.stop() == 0
        stopped = dropped_in(sender.log_text())
        assert stopped > 0
        state = json.loads((card / "state.json").read_text())
        stored = keys(server.rows())
        assert max(stored.values()) == 1
        waiting = {(r["session"], r["seq"]) for r in _spooled(card)}
        assert len(set(stored) | waiting) + stopped == state["next_seq"], "stored, waiting or counted: nothing else"


def test_full_tiny_spool_file_system(server_factory, sender_factory, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "card", "48k") as card:
        server = server_factory(start=False, unit="rpi01", interval=0.005, fsync_interval=0.2, stats_interval=0.5,
                                spool_dir="card", memory_readings=60)
        sender = sender_factory(server.config_path).start()
        wait_for(lambda: "SPOOL WRITE FAILING" in sender.log_text(), 60, what="the card to fill")
        wait_for(lambda: re.search(r"dropped=[1-9]", sender.log_text()), 20, what="readings counted as dropped")
        server.start()
        wait_for(lambda: "spool works again" in sender.log_text(), 60, what="space again once acked")
        assert sender.proc is not None and sender.proc.poll() is None
        assert sender.stop() == 0
        state = json.loads((card / "state.json").read_text())
        stored = keys(server.rows())
        assert max(stored.values()) == 1
        waiting = {(r["session"], r["seq"]) for r in _spooled(card)}
        assert len(set(stored) | waiting) + dropped_in(sender.log_text()) == state["next_seq"]


def test_power_cut_brings_back_an_older_state(server_factory, sender_factory) -> None:
    """The state of the last clean stop comes back after a run that spooled more: no seq is ever reused."""
    server, sender, spool = spool_while_server_away(server_factory, sender_factory, 2)
    assert sender.stop() == 0
    clean = (spool / "state.json").read_bytes()
    session = json.loads(clean)["session"]
    sender.start()
    count = len(segments(spool))
    wait_for(lambda: len(segments(spool)) >= count + 2, 30, what="more spooled by the same session")
    assert sender.spool_state()["session"] == session
    sender.stop(signal.SIGKILL)
    shutil.copy(spool / "state.json", spool / "state.later")
    (spool / "state.json").write_bytes(clean)  # the power cut
    before = Counter(intact(spool).values())
    log_from = len(sender.log_text())
    server.start()
    sender.start()
    wait_for(lambda: before <= keys(server.rows()), 60, what="every spooled reading in the CSV")
    assert sender.stop() == 0
    log = sender.log_text()[log_from:]
    assert "older than the spool" in log and sender.spool_state()["session"] != session
    assert {k: n for k, n in keys(server.rows()).items() if k[0] == session} == before
    assert_session_complete(sender, server)


def check_spool(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, str(ROOT / "launch_sender.py"), "--config", str(config), "--check-spool"],
                          capture_output=True, text=True, timeout=60, cwd=config.parent)


def _spooled(folder: Path) -> list[dict]:
    acked = json.loads((folder / "state.json").read_text())["acked"]
    return [json.loads(records.decode(line)[1])  # type: ignore[index]
            for segment in segments(folder) for line in segment.read_bytes().splitlines(keepends=True)
            if records.decode(line) and records.decode(line)[0] >= acked]  # type: ignore[index]

"""Checking the spool: which records are intact, which positions are lost, and setting damage aside.

Used at every start of the sender (``check(..., repair=True)``: damaged bytes are moved into
``damaged/`` beside the segments and each damaged segment is rewritten with its intact records) and
by ``launch_sender.py --check-spool`` (``repair=False``: nothing is changed).
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..durable import fsync_dir
from . import records
from . import state as state_file
from .holes import Holes

log = logging.getLogger(__name__)

NAME = re.compile(r"seg-(\d{20})\.jsonl\Z")
DAMAGED = "damaged"
_SESSION = re.compile(rb'"session":\s*"([^"]*)"')
_TIME = re.compile(rb'"time":\s*"([^"]*)"')
_SEQ = re.compile(rb'"seq":\s*(\d+)')


def segment_name(first: int) -> str:
    return f"seg-{first:020d}.jsonl"


@dataclass
class Scan:
    """One segment file as read: its intact records and its damaged byte runs."""

    path: Path
    first: int  # from the file name: no record in it lies below
    legacy: bool = False
    lines: list[tuple[int, bytes]] = field(default_factory=list)  # (position, record) in increasing positions
    damaged: list[tuple[int, bytes]] = field(default_factory=list)  # (byte offset, bytes)
    error: str | None = None  # the file could not be read at all
    size: int = 0
    end: int = 0  # position after its last intact record
    gaps: list[tuple[int, int]] = field(default_factory=list)  # lost positions between its intact records
    count: int = 0  # intact records
    head_damage: bool = False  # damage before its first intact record
    tail_damage: bool = False  # damage after its last intact record

    @property
    def why(self) -> str:
        if self.error:
            return f"unreadable ({self.error})"
        return "checksum or format check failed" if self.damaged else "no record holds them"


@dataclass
class Loss:
    start: int
    end: int
    file: str
    why: str
    new: int  # positions not known lost before


@dataclass
class Report:
    """What the spool holds: ``segments`` are the scans left in use, in order."""

    segments: list[Scan] = field(default_factory=list)
    losses: list[Loss] = field(default_factory=list)
    damaged_bytes: int = 0
    left_in_place: bool = False  # damage could not be set aside (a read-only card)
    readings: int = 0  # waiting: positions at or above acked
    sessions: dict[str, int] = field(default_factory=dict)
    oldest: str | None = None
    newest: str | None = None
    max_seq: dict[str, int] = field(default_factory=dict)  # highest seq per session (last record of each segment)

    @property
    def lost(self) -> int:
        return sum(loss.new for loss in self.losses)

    @property
    def damaged(self) -> bool:
        """Damage not found and counted before (positions already in the state's holes are not)."""
        return bool(self.lost or self.damaged_bytes)

    def summary(self) -> str:
        """One line: what the check found."""
        text = f"{len(self.segments)} segments, {self.readings} readings waiting"
        if not self.damaged:
            return f"spool check: clean; {text}"
        files = sorted({loss.file for loss in self.losses if loss.new})
        return (f"spool check: DAMAGED; {text}; {self.lost} readings lost in {', '.join(files) or 'no records'}, "
                f"{self.damaged_bytes} damaged bytes "
                f"{'left in place (the card refuses writes)' if self.left_in_place else 'set aside in damaged/'}")


def scan(path: Path, first: int) -> Scan:
    """Read and check every record of one segment file."""
    result = Scan(path, first)
    try:
        data = path.read_bytes()
    except OSError as exc:
        result.error = exc.strerror or str(exc)
        return result
    result.size = len(data)
    result.legacy = records.is_legacy(data)
    last = first - 1
    if result.legacy:
        items = ((offset, line, None if payload is None else (position, payload))
                 for offset, position, line, payload in records.legacy_records(data, first))
    else:
        items = _v2_items(data)
    for offset, line, record in items:
        if record is not None and record[0] > last:
            if result.lines and record[0] > last + 1:
                result.gaps.append((last + 1, record[0]))
            last = record[0]
            result.lines.append((last, records.encode(last, record[1]) if result.legacy else line))
            result.tail_damage = False
            continue
        result.head_damage = result.head_damage or not result.lines
        result.tail_damage = True
        if result.damaged and result.damaged[-1][0] + len(result.damaged[-1][1]) == offset:
            result.damaged[-1] = (result.damaged[-1][0], result.damaged[-1][1] + line)
        else:
            result.damaged.append((offset, line))
    result.end, result.count = last + 1, len(result.lines)
    return result


def _v2_items(data: bytes):
    offset = 0
    for line in data.splitlines(keepends=True):
        yield offset, line, records.decode(line)
        offset += len(line)


def check(folder: Path, acked: int | None, holes: Holes, known_end: int, repair: bool, deep: bool = False) -> Report:
    """Scan every segment in ``folder``; count lost positions at or above ``acked`` into ``holes``.

    ``acked`` is None without a state: then nothing below the first segment counts as lost.
    """
    report = Report()
    expect: int | None = acked
    acked = acked or 0
    paths = sorted(p for p in folder.glob("seg-*.jsonl") if NAME.match(p.name)) if folder.is_dir() else []
    for leftover in folder.glob("seg-*.jsonl.tmp") if repair and folder.is_dir() else ():
        try:
            leftover.unlink()  # a rewrite cut short: the segment it was for is still whole
        except OSError:
            pass  # tried again at the next start
    pending: tuple[str, str] | None = None  # damage seen since the last intact record: (file, why)
    for path in paths:
        seg = scan(path, int(NAME.match(path.name).group(1)))  # type: ignore[union-attr]
        head_damaged = bool(seg.error or seg.head_damage)
        if expect is None:
            expect = seg.first
        if seg.lines:
            if seg.lines[0][0] > expect:
                if seg.first > expect and not pending:
                    _lose(report, holes, acked, expect, seg.first, f"the gap before {path.name}",
                          "no segment holds them (deleted?)")
                    expect = seg.first
                blame = (path.name, seg.why) if head_damaged else pending or (path.name, seg.why)
                _lose(report, holes, acked, expect, seg.lines[0][0], *blame)
            for start, end in seg.gaps:
                _lose(report, holes, acked, start, end, path.name, seg.why)
            expect = max(expect, seg.end)
        tail_damaged = bool(seg.error or seg.tail_damage)
        pending = (path.name, seg.why) if tail_damaged else (None if seg.lines else pending)
        report.damaged_bytes += sum(len(run) for _, run in seg.damaged) + (seg.size if seg.error else 0)
        if repair and (seg.damaged or seg.legacy or seg.error or not seg.lines):
            report.left_in_place |= not _set_aside(folder, seg)
        if seg.lines:
            _tally(report, seg, acked, deep)
            report.segments.append(seg)
        seg.lines = []  # the whole spool is never held in memory
    if expect is not None and known_end > expect:
        _lose(report, holes, acked, expect, known_end,
              *(pending or ("the end of the spool", "no segment holds them (deleted?)")))
    return report


def _lose(report: Report, holes: Holes, acked: int, start: int, end: int, file: str, why: str) -> None:
    start = max(start, acked)
    if end > start:
        report.losses.append(Loss(start, end, file, why, holes.add(start, end)))


def _tally(report: Report, seg: Scan, acked: int, deep: bool) -> None:
    session, seq = _SESSION.search(seg.lines[-1][1]), _SEQ.search(seg.lines[-1][1])
    if session and seq:
        key = session.group(1).decode(errors="replace")
        report.max_seq[key] = max(report.max_seq.get(key, -1), int(seq.group(1)))
    waiting = [line for position, line in seg.lines if position >= acked]
    report.readings += len(waiting)
    if not waiting:
        return
    sample = waiting if deep else [waiting[0], waiting[-1]]
    for line in sample:
        session = _SESSION.search(line)
        if session:
            key = session.group(1).decode(errors="replace")
            report.sessions[key] = report.sessions.get(key, 0) + 1
        stamp = _TIME.search(line)
        if stamp:
            value = stamp.group(1).decode(errors="replace")
            report.oldest = value if report.oldest is None or value < report.oldest else report.oldest
            report.newest = value if report.newest is None or value > report.newest else report.newest


def _set_aside(folder: Path, seg: Scan) -> bool:
    """Move the damaged bytes into damaged/ and rewrite the segment with its intact records only."""
    try:
        if not seg.size and not seg.error:
            seg.path.unlink()  # an empty file: a first write that never happened
            return True
        aside = folder / DAMAGED
        aside.mkdir(exist_ok=True)
        stamp = int(time.time())
        if seg.error or not seg.lines:
            os.replace(seg.path, aside / f"{seg.path.name}.{stamp}")
            fsync_dir(aside)
            fsync_dir(folder)
            return True
        for offset, run in seg.damaged:
            with open(aside / f"{seg.path.name}.at{offset}.{stamp}", "wb") as file:
                file.write(run)
                os.fsync(file.fileno())
        fsync_dir(aside)
        tmp = seg.path.with_name(seg.path.name + ".tmp")
        with open(tmp, "wb") as file:
            file.write(b"".join(line for _, line in seg.lines))
            os.fsync(file.fileno())
        os.replace(tmp, seg.path)
        fsync_dir(folder)
        seg.size = sum(len(line) for _, line in seg.lines)
        seg.legacy = False
        return True
    except OSError as exc:
        log.error("spool: cannot set the damage in %s aside (%s); its intact records are still read",
                  seg.path.name, exc)
        return False


def describe_spool(folder: Path) -> tuple[str, bool]:
    """What ``folder`` holds, for ``--check-spool``, changing nothing; and whether damage was found."""
    if not folder.is_dir():
        return f"spool {folder}: no such folder, nothing spooled", False
    state, problem = state_file.read(folder)
    holes = Holes(state.get("holes"))
    acked = state.get("acked", 0)
    earlier = holes.overlap(acked, 2**63)
    report = check(folder, acked, holes, state.get("end", 0), repair=False, deep=True)
    sessions = ", ".join(f"{name} ({count})" for name, count in sorted(report.sessions.items())) or "none"
    lines = [f"spool {folder}: {len(report.segments)} segments, {report.readings} readings waiting",
             f"sessions: {sessions}",
             f"oldest: {report.oldest or '-'}, newest: {report.newest or '-'}"]
    has_segments = bool(report.segments or report.losses)
    if problem is not None or (not state and has_segments):
        lines.append(f"state: DAMAGED: {problem or 'state.json is missing'} (the next start begins a new session)")
    elif state:
        how = "stopped cleanly" if state.get("clean") else "running, or not stopped cleanly"
        lines.append(f"state: session {state.get('session')}, next seq {state.get('next_seq')}, acknowledged "
                     f"below position {acked}, {how}")
    for loss in report.losses:
        if loss.new:
                lines.append(f"damage: {loss.new} readings (positions {loss.start}-{loss.end - 1}) lost in "
                         f"{loss.file}: {loss.why}")
    if report.damaged_bytes:
        lines.append(f"damage: {report.damaged_bytes} bytes fail their checks")
    if earlier:
        lines.append(f"earlier damage: {earlier} readings already counted as dropped by the sender")
    aside = list((folder / DAMAGED).glob("*")) if (folder / DAMAGED).is_dir() else []
    if aside:
        lines.append(f"set aside earlier: {len(aside)} files, {sum(p.stat().st_size for p in aside)} bytes in "
                     f"{folder / DAMAGED}")
    damaged = report.damaged or problem is not None or (not state and has_segments)
    lines.append("result: DAMAGED" if damaged else "result: clean")
    return "\n".join(lines), damaged

"""Fault injection: a server and two emulated senders in network namespaces, through loss, duplicated
packets, a slow link, a cut link, kill -9 of either side and a full server disk. Passes when every
reading a sender put on disk reaches the CSV, none twice, every row whole, and each session's seq
numbers run from 0 without a hole (in the CSV, or still in the sender's spool after it stopped).

Stage ``faults`` of scripts/test.sh (``pytest -m faults``); needs root, like CI.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from harness import SenderProcess, ServerProcess, read_rows, wait_for, write_config
from netlab import Lab, Link

from whc.columns import NAMES, SENSOR_COLUMNS

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

UNITS = ("rpi01", "rpi02")
PORT = 5000
ACK_TIMEOUT = 2.0
DISK_BYTES = 64 * 2**20
SPOOL_RECORD = re.compile(rb'"session":"([^"]+)","seq":(\d+)\}')

Key = tuple[str, str, int]  # (sh_id, session, seq)


@pytest.fixture
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces, tc and a tmpfs (CI runs as root)")
    for tool in ("ip", "tc"):
        assert shutil.which(tool), f"{tool} is missing: scripts/test.sh installs iproute2"
    made = Lab()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def server_disk(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs for the server's CSV, so the test can fill it."""
    folder = tmp_path / "disk"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "whc-faults", str(folder)], check=True,
                   timeout=30)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], timeout=30)


class Rig:
    """The server, the senders and their links; what it saw of the senders' spools."""

    def __init__(self, lab: Lab, tmp_path: Path, disk: Path) -> None:
        self.lab = lab
        server_ns = lab.namespace("server")
        self.links: dict[str, Link] = {}
        for number, unit in enumerate(UNITS, 1):
            self.links[unit] = lab.link(server_ns, lab.namespace(unit), number)
        folder = tmp_path / "server"
        folder.mkdir()
        self.server = ServerProcess(folder, ip="0.0.0.0", port=PORT, csv=str(disk / "whc_data.csv"),
                                    allowed_ips=["10.200.0.0/16"], stats_interval=1)
        self.server.prefix = lab.exec_prefix(server_ns)
        self.senders: dict[str, SenderProcess] = {}
        for unit, link in self.links.items():
            (tmp_path / unit).mkdir()
            config = write_config(tmp_path / unit, ip=link.server.address, port=PORT, unit=unit, interval=0.01,
                                  ack_timeout=ACK_TIMEOUT, fsync_interval=0.25, stats_interval=0.5, led=False)
            sender = SenderProcess(config)
            sender.prefix = lab.exec_prefix(link.client.namespace)
            self.senders[unit] = sender
        self.on_disk: set[Key] = set()  # every reading seen in a spool when a sender was killed
        self.kills = 0

    def start(self) -> None:
        self.server.start()
        for sender in self.senders.values():
            sender.start()

    def stop_all(self) -> None:
        """Kill whatever still runs, by PID."""
        for process in (*self.senders.values(), self.server):
            if process.proc is not None and process.proc.poll() is None:
                process.proc.kill()
                process.proc.wait(10)

    # --- what arrived -----------------------------------------------------------------------
    def rows(self) -> list[dict[str, str]]:
        return read_rows(self.server.csv_path) if self.server.csv_path.exists() else []

    def counts(self) -> Counter[str]:
        return Counter(row["sh_id"] for row in self.rows())

    def wait_progress(self, more: int, timeout: float, what: str) -> None:
        """Wait until every unit has ``more`` rows beyond what it has now."""
        start = self.counts()
        wait_for(lambda: all(self.counts()[unit] >= start[unit] + more for unit in UNITS), timeout, 0.25,
                 what=f"{more} more rows from each sender {what}")

    def spool_keys(self, unit: str) -> set[Key]:
        """Every whole reading in a sender's spool files, by key."""
        keys = set()
        for segment in (self.senders[unit].folder / "spool").glob("seg-*"):
            for line in segment.read_bytes().splitlines(keepends=True):
                found = SPOOL_RECORD.search(line)
                if found and line.endswith(b"\n"):
                    keys.add((unit, found.group(1).decode(), int(found.group(2))))
        return keys

    def kill_sender(self, unit: str) -> None:
        """kill -9, note what its spool holds, start it again."""
        sender = self.senders[unit]
        self.kill(sender)
        self.on_disk |= self.spool_keys(unit)
        sender.start()

    def kill(self, process: ServerProcess | SenderProcess) -> None:
        self.kills += 1
        process.stop(signal.SIGKILL)


def test_nothing_lost_duplicated_or_corrupt_through_network_faults(lab, server_disk, tmp_path) -> None:
    rig = Rig(lab, tmp_path, server_disk)
    try:
        rig.start()
        rig.wait_progress(50, 30, "at the start")
        _lossy_and_duplicating_links(rig)
        _slow_links(rig)
        _cut_link_and_sender_killed_meanwhile(rig, "rpi01")
        _server_killed(rig)
        _sender_killed_while_streaming(rig, "rpi02")
        _full_server_disk(rig, server_disk)
        wait_for(lambda: rig.on_disk <= _keys(rig.rows()), 60, 0.25, what="every spooled reading in the CSV")
        for sender in rig.senders.values():
            assert sender.stop() == 0, sender.log_text()[-2000:]
        still_spooled = set().union(*(rig.spool_keys(unit) for unit in UNITS))
        assert rig.server.stop() == 0, rig.server.log_text()[-2000:]
    finally:
        rig.stop_all()
    _check_complete(rig, still_spooled)


# --- the faults, each held until readings get through it ------------------------------------------
def _lossy_and_duplicating_links(rig: Rig) -> None:
    for link in rig.links.values():
        rig.lab.lose(link)
        rig.lab.duplicate(link)
    rig.wait_progress(300, 60, "through 25 % loss and 12.5 % duplicated packets")
    for link in rig.links.values():
        assert rig.lab.packets_hit(link) > 0, "the filters dropped and duplicated packets"
        rig.lab.mend(link)


def _slow_links(rig: Rig) -> None:
    for link in rig.links.values():
        rig.lab.slow(link)
    rig.wait_progress(100, 40, "over a 64 kbit/s link")
    for link in rig.links.values():
        rig.lab.mend(link)


def _cut_link_and_sender_killed_meanwhile(rig: Rig, unit: str) -> None:
    sender, link = rig.senders[unit], rig.links[unit]
    mark = len(sender.log_text())
    rig.lab.cut(link)
    gave_up = f"server {link.server.address} port {PORT}: "  # no ack for ack_timeout, or a send timing out
    wait_for(lambda: gave_up in sender.log_text()[mark:], 20, 0.1, what="the sender to give up on the cut link")
    wait_for(lambda: rig.spool_keys(unit), 10, 0.1, what="readings spooled while the link is down")
    rig.kill_sender(unit)
    rig.lab.mend(link)
    rig.wait_progress(100, 40, f"after the link came back and {unit} was restarted")


def _server_killed(rig: Rig, times: int = 3) -> None:
    for _ in range(times):
        rig.kill(rig.server)
        rig.server.start()
        rig.wait_progress(50, 40, "after kill -9 of the server")


def _sender_killed_while_streaming(rig: Rig, unit: str) -> None:
    rig.kill_sender(unit)
    rig.wait_progress(100, 40, f"after kill -9 of {unit}")


def _full_server_disk(rig: Rig, disk: Path) -> None:
    marks = {unit: len(s.log_text()) for unit, s in rig.senders.items()}
    mark = len(rig.server.log_text())
    filler = _fill(disk)
    wait_for(lambda: "WRITES FAILING" in rig.server.log_text()[mark:], 30, 0.1, what="the server to fail writing")
    for unit, sender in rig.senders.items():  # readings pile up on the Pis meanwhile
        wait_for(lambda s=sender, m=marks[unit]: _backlog(s.log_text()[m:]) >= 100, 30, 0.1,
                 what=f"{unit} to hold readings back")
    rig.kill(rig.server)  # with readings received and not written: the senders still have them
    rig.server.start()  # on the full disk
    filler.unlink()
    rig.wait_progress(100, 40, "after the disk had room again")


def _fill(disk: Path) -> Path:
    """Fill the file system with one file; return it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (2**20, 4096):
            for _ in range(DISK_BYTES // size + 1):
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def _backlog(log: str) -> int:
    found = re.findall(r"acked_backlog=(\d+)", log)
    return int(found[-1]) if found else 0


# --- the verdict --------------------------------------------------------------------------------
def _keys(rows: list[dict[str, str]]) -> set[Key]:
    return {(row["sh_id"], row["session"], int(row["seq"])) for row in rows}


def _check_complete(rig: Rig, still_spooled: set[Key]) -> None:
    rows = rig.rows()
    for row in rows:
        _check_row(row, rig)
    stored = Counter((row["sh_id"], row["session"], int(row["seq"])) for row in rows)
    twice = [key for key, count in stored.items() if count > 1]
    assert not twice, f"{len(twice)} readings stored more than once, e.g. {twice[:5]}"
    missing = rig.on_disk - set(stored)
    assert not missing, f"{len(missing)} readings spooled before a kill -9 never arrived, e.g. {sorted(missing)[:5]}"
    known = set(stored) | still_spooled
    sessions: dict[tuple[str, str], list[int]] = {}
    for unit, session, seq in known:
        sessions.setdefault((unit, session), []).append(seq)
    for (unit, session), seqs in sessions.items():
        holes = set(range(max(seqs) + 1)) - set(seqs)
        assert not holes, f"{unit} session {session}: {len(holes)} seqs never arrived, e.g. {sorted(holes)[:5]}"
    assert {unit for unit, _ in sessions} == set(UNITS)
    for unit, sender in rig.senders.items():
        assert not re.search(r"dropped=[1-9]", sender.log_text()), f"{unit} dropped readings"
    rejects = rig.server.rejects()
    torn = [r for r in rejects if _torn(r)]  # the last line of a process killed mid-send, or mid-write
    assert len(torn) == len(rejects), f"the server rejected whole lines: {[r for r in rejects if not _torn(r)][:3]}"
    assert len(torn) <= rig.kills, f"more torn lines than kills: {torn}"
    print(f"faults: {len(rows)} readings in {len(sessions)} sessions, none lost, duplicated or corrupt; "
          f"{len(still_spooled)} still spooled at the end; {len(torn)} torn lines recorded")


def _torn(reject: dict) -> bool:
    """A CSV row cut short by a server kill -9, or a reading cut short by a sender's."""
    if "torn" in reject.get("reason", ""):
        return True
    raw = reject.get("raw", "")
    try:
        json.loads(raw)
    except ValueError:
        return raw.startswith("{")
    return False


def _check_row(row: dict[str, str], rig: Rig) -> None:
    assert None not in row and list(row) == list(NAMES), f"row with other columns: {row}"
    assert row["sh_id"] in UNITS and row["src_ip"] == rig.links[row["sh_id"]].client.address, row
    assert row["session"] and row["seq"].isdigit(), row
    for name in ("time", "recv_time"):
        datetime.fromisoformat(row[name])
    for name in SENSOR_COLUMNS:
        if row[name]:
            assert math.isfinite(float(row[name])), row


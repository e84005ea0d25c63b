"""The sender as a process: headless emulator, real server process, loopback. Nothing lost, nothing twice."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from harness import PYTHON, ROOT, wait_for

from whc import protocol
from whc.columns import DEFAULT_SENSOR_GROUPS, columns_of


def session_seqs(rows: list[dict[str, str]], session: str) -> list[int]:
    return sorted(int(r["seq"]) for r in rows if r["session"] == session)


def assert_exactly_once(rows: list[dict[str, str]], spooled: list[dict], session: str, total: int,
                        first: int = 0) -> None:
    """Every seq first..total-1 of ``session`` is in the CSV exactly once or still in the spool."""
    counts = Counter(int(r["seq"]) for r in rows if r["session"] == session)
    assert max(counts.values(), default=1) == 1, "no row twice"
    waiting = {r["seq"] for r in spooled if r["session"] == session}
    assert not waiting & set(counts), "nothing both stored and still buffered"
    assert set(counts) | waiting == set(range(first, total)), "nothing lost"


def run_once(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, str(ROOT / "launch_sender.py"), *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


def test_once_prints_one_valid_reading_with_the_default_columns(tmp_path: Path) -> None:
    config = tmp_path / "server.json"
    config.write_text(json.dumps({"ip": "127.0.0.1", "port": 9, "unit": "rpi07"}))
    result = run_once("--config", str(config), "--once", "--emulator", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    reading = protocol.parse_reading(protocol.decode_line(line.encode()), "t", "ip")
    expected = {name for group in DEFAULT_SENSOR_GROUPS for name in columns_of(group)}
    assert expected <= set(reading) and reading["sh_id"] == "rpi07"
    assert all(reading[name] is not None for name in expected)
    assert abs(float(reading["acc_z"]) - 1.0) < 0.2, "a HAT lying flat feels 1 g"


def test_no_sense_hat_and_no_emulator_exits_2_naming_the_fix(tmp_path: Path) -> None:
    config = tmp_path / "server.json"
    config.write_text(json.dumps({"ip": "127.0.0.1", "port": 9}))
    result = run_once("--config", str(config), "--once", cwd=tmp_path)
    assert result.returncode == 2
    assert "--emulator" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_sender_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "server.json"
    config.write_text(json.dumps({"ip": "127.0.0.1", "port": 9, "sensors": ["gyro"]}))
    result = run_once("--config", str(config), "--once", "--emulator", cwd=tmp_path)
    assert result.returncode == 2
    assert "key 'sensors' has an unknown group 'gyro'" in result.stderr


def test_rate_at_interval_0_05_is_20_hz(server_factory, sender_factory, tmp_path: Path) -> None:
    server = server_factory(unit="rpi01", interval=0.05)
    sender = sender_factory(server.config_path).start()
    rows = wait_for(lambda: len(server.rows()) >= 215 and server.rows(), 30, what="10 s of readings")
    sender.stop()
    times = [datetime.fromisoformat(r["time"]) for r in rows[:215]]
    span = (times[-1] - times[10]).total_seconds()  # skip the start-up
    rate = 204 / span
    print(f"achieved rate {rate:.2f} Hz over {span:.1f} s")
    assert abs(rate - 20) < 2, f"{rate:.2f} Hz"


def test_server_down_for_10_s_then_back_every_seq_exactly_once(server_factory, sender_factory, tmp_path: Path) -> None:
    server = server_factory(unit="rpi01", interval=0.02, fsync_interval=0.2)
    sender = sender_factory(server.config_path).start()
    wait_for(lambda: len(server.rows()) > 50, 20, what="rows before the outage")
    assert server.stop() == 0
    outage_rows = len(server.rows())
    wait_for(lambda: len(list((tmp_path / "spool").glob("seg-*"))) > 0, 10, what="spooling during the outage")
    wait_for(lambda: "retrying" in sender.log_text(), 10, what="the sender to notice")
    time.sleep(10)  # the outage itself (the scenario's length, not a wait for anything)
    server.start()
    wait_for(lambda: len(server.rows()) > outage_rows + 600, 40, what="the backlog to arrive")
    assert sender.stop() == 0
    state = sender.spool_state()
    assert state["clean"]
    assert_exactly_once(server.rows(), sender.spooled(), state["session"], state["next_seq"])


def test_stopped_while_server_down_then_restarted_is_complete(server_factory, sender_factory, tmp_path: Path) -> None:
    server = server_factory(start=False, unit="rpi01", interval=0.02)
    sender = sender_factory(server.config_path).start()
    wait_for(lambda: "retrying" in sender.log_text(), 15, what="the sender to find no server")
    wait_for(lambda: _spooled_count(tmp_path) > 0, 15, what="readings in the spool")
    assert sender.stop() == 0
    first = sender.spool_state()
    assert first["clean"] and first["acked"] == 0 and len(sender.spooled()) == first["next_seq"] > 0
    server.start()
    sender.start()
    wait_for(lambda: len(server.rows()) >= first["next_seq"] + 20, 30, what="the backlog and live data")
    assert sender.stop() == 0
    state = sender.spool_state()
    assert state["session"] == first["session"], "a clean stop keeps the session"
    assert_exactly_once(server.rows(), sender.spooled(), state["session"], state["next_seq"])
    server.stop()


def test_full_spool_drops_oldest_and_counts_them(server_factory, sender_factory, tmp_path: Path) -> None:
    server = server_factory(start=False, unit="rpi01", interval=0, spool_max_bytes=65536, fsync_interval=0.1)
    sender = sender_factory(server.config_path).start()
    wait_for(lambda: "spool full" in sender.log_text(), 30, what="the spool to fill")
    assert sender.stop() == 0
    dropped_text = sender.log_text().rsplit("spool full", 1)[1]
    dropped = int(dropped_text.split("; ")[1].split(" dropped in all")[0])
    state = sender.spool_state()
    spooled = sender.spooled()
    assert spooled[0]["seq"] == dropped, "the oldest were dropped"
    server.start()
    sender.start()
    wait_for(lambda: len(server.rows()) >= len(spooled), 30, what="the rest to arrive")
    assert sender.stop() == 0
    rows = server.rows()
    assert min(session_seqs(rows, state["session"])) == dropped, "what was dropped never arrives"
    final = sender.spool_state()
    assert_exactly_once(rows, sender.spooled(), final["session"], final["next_seq"], first=dropped)


def _spooled_count(folder: Path) -> int:
    return sum(1 for _ in (folder / "spool").glob("seg-*"))

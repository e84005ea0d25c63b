"""report.py on CSVs the system wrote (real server, emulated senders), and on a large synthetic CSV
whose every anomaly is known: exact numbers, bounded memory."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

import pytest
from harness import PYTHON, ROOT, wait_for

from whc.columns import NAMES, ORIGINAL_HEADER
from whc.reporting.build import Options, build_report
from whc.reporting.progress import Progress
from whc.reporting.stream import CsvStream


def run_report(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, str(ROOT / "report.py"), *args], capture_output=True, text=True, timeout=60,
                          env=env)


def summary_rows(folder: Path) -> dict[str, dict[str, str]]:
    with open(folder / "summary.csv", newline="") as file:
        return {row["unit"]: row for row in csv.DictReader(file)}


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def expected_gaps(rows: list[dict[str, str]], factor: float = 5.0, slack: float = 0.0) -> list[float]:
    """The gaps of one unit's rows computed the plain way (the file is small): steps between sorted times
    longer than ``factor`` x (1 + ``slack``) median intervals within a session."""
    times = [epoch(r["time"]) for r in rows]
    pairs = zip(times, times[1:], rows, rows[1:], strict=False)
    steps = [b - a for a, b, r, s in pairs if r["session"] == s["session"]]
    limit = factor * median(steps) * (1 + slack)
    ordered = sorted(times)
    return [b - a for a, b in zip(ordered, ordered[1:], strict=False) if b - a > limit]


def assert_gap_count(reported: str, rows: list[dict[str, str]]) -> None:
    """The report's median is within 0.1 %: a step that close to the limit may fall either way."""
    assert len(expected_gaps(rows, slack=0.002)) <= int(reported) <= len(expected_gaps(rows, slack=-0.002))


def assert_png(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= 800 and image.height >= 400


# --- on what the system wrote -----------------------------------------------------------------


def test_a_paused_sender_is_one_gap_in_the_report(server_factory, sender_factory, tmp_path: Path) -> None:
    server = server_factory(unit="rpi01", interval=0.02, fsync_interval=0.2)
    sender = sender_factory(server.config_path).start()
    wait_for(lambda: len(server.rows()) >= 100, 20, what="readings before the pause")
    sender.proc.send_signal(signal.SIGSTOP)
    time.sleep(2)  # the scenario: the sender does nothing for 2 s
    sender.proc.send_signal(signal.SIGCONT)
    before = len(server.rows())
    wait_for(lambda: len(server.rows()) >= before + 100, 20, what="readings after the pause")
    assert sender.stop() == 0
    assert server.stop() == 0
    rows = server.rows()

    result = run_report(str(server.csv_path))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "report"
    unit = summary_rows(out)["rpi01"]
    gaps = expected_gaps(rows)
    assert max(gaps) >= 1.9, "the pause is in the file"
    assert int(unit["rows"]) == len(rows)
    assert_gap_count(unit["gaps"], rows)
    assert float(unit["longest_gap_s"]) == pytest.approx(max(gaps), abs=1e-3)
    assert float(unit["achieved_rate_hz"]) == pytest.approx(50, rel=0.2)
    checks = ("sessions", "missing_seq", "duplicate_seq", "time_backwards")
    assert [unit[name] for name in checks] == ["1", "0", "0", "0"]
    assert 0 <= float(unit["clock_offset_median_ms"]) <= float(unit["clock_offset_max_ms"]) < 60_000
    times = [epoch(r["time"]) for r in rows]
    start = next(a for a, b in zip(times, times[1:], strict=False) if b - a == max(gaps))
    markdown = (out / "summary.md").read_text()
    assert "## Longest gaps" in markdown
    assert datetime.fromtimestamp(start, UTC).strftime("from %Y-%m-%d %H:%M:%S") in markdown
    assert "rpi01" in result.stdout and "invalid rows: none" in result.stdout
    assert_png(out / "rpi01.png")
    assert "![rpi01](rpi01.png)" in markdown

    middle = datetime.fromisoformat(rows[50]["time"]).isoformat()
    later = datetime.fromisoformat(rows[150]["time"]).isoformat()
    window = run_report(str(server.csv_path), "--since", middle, "--until", later, "--no-plots",
                        "--out", str(tmp_path / "window"))
    assert window.returncode == 0, window.stderr
    assert summary_rows(tmp_path / "window")["rpi01"]["rows"] == "100", "--since inclusive, --until exclusive"
    other = run_report(str(server.csv_path), "--unit", "rpi99", "--no-plots", "--out", str(tmp_path / "other"))
    assert other.returncode == 0 and "no readings" in other.stdout and summary_rows(tmp_path / "other") == {}


def test_a_sender_killed_and_restarted_shows_two_sessions(server_factory, sender_factory, tmp_path: Path) -> None:
    server = server_factory(unit="rpi02", interval=0.02, fsync_interval=0.2)
    sender = sender_factory(server.config_path).start()
    wait_for(lambda: len(server.rows()) >= 50, 20, what="readings of the first session")
    sender.stop(signal.SIGKILL)  # an unclean stop: the next start is a new session
    sender.start()
    wait_for(lambda: len({r["session"] for r in server.rows()}) == 2 and len(server.rows()) >= 150, 20,
             what="readings of the second session")
    assert sender.stop() == 0
    assert server.stop() == 0
    rows = server.rows()

    result = run_report(str(server.csv_path), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    unit = summary_rows(tmp_path / "out")["rpi02"]
    assert unit["sessions"] == "2"
    assert int(unit["rows"]) == len(rows)
    assert_gap_count(unit["gaps"], rows)
    assert int(unit["gaps"]) >= 1, "the restart left a hole"
    assert unit["duplicate_seq"] == "0" and unit["time_backwards"] == "0"
    assert "rpi02: 2 sessions" in " ".join(result.stdout.split())
    assert_png(tmp_path / "out" / "rpi02.png")


# --- on a large synthetic file with known anomalies --------------------------------------------

T0 = datetime(2026, 11, 24, tzinfo=UTC).timestamp()
STEP_US = 10_000
GAP_AT, GAP_STEPS = 50_000, 300  # 300 samples skipped: one 3.01 s gap
MISSING_AT, MISSING = 80_000, 10  # 10 seq numbers skipped, times regular
DUP_AT = 120_000  # this row written twice
BACK_AT = 150_000  # this row and the next swap times: time goes backwards once
OFFSET_AT = 160_000  # received 5 s late (replayed from a spool)
SPIKE_AT = 170_000  # acc_x 5 g for one sample
SESSION_AT = 200_000  # a new session from here, seq from 0


def _stamp(us: int) -> str:
    seconds, micro = divmod(us, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"2026-11-24T{hour:02d}:{minute:02d}:{second:02d}.{micro:06d}Z"


def write_synthetic(path: Path, n: int) -> dict[str, object]:
    """``n`` readings of unit synth01 (and one in 100 of synth02) with the anomalies above; what to expect."""
    def line(unit: str, k: int, seq: int, session: str, acc_x: str = "0.01", late_ms: int = 25) -> str:
        t_us = k * STEP_US
        return (f"{_stamp(t_us)},{unit},0.0,0.0,0.0,0.1,-0.1,0.05,{acc_x},-0.002,0.999,,,,,,,,,,,,,,{seq},{session},"
                f"{_stamp(t_us + late_ms * 1000)},127.0.0.1,\n")

    rows = {"synth01": 0, "synth02": 0}
    with open(path, "w") as file:
        file.write(",".join(NAMES) + "\n")
        out = []
        for i in range(n):
            k = i + (GAP_STEPS if i >= GAP_AT else 0)
            if i == BACK_AT:
                k += 1
            elif i == BACK_AT + 1:
                k -= 1
            session, seq = ("a1", i + (MISSING if i >= MISSING_AT else 0)) if i < SESSION_AT else ("b2", i - SESSION_AT)
            text = line("synth01", k, seq, session, "5.0" if i == SPIKE_AT else "0.01", 5000 if i == OFFSET_AT else 25)
            out.append(text)
            rows["synth01"] += 1
            if i == DUP_AT:
                out.append(text)
                rows["synth01"] += 1
            if i % 100 == 0:
                out.append(line("synth02", k, i // 100, "c3"))
                rows["synth02"] += 1
            if i in (1000, 2000, 3000):
                out.append("2026-11-24T00:00:10.000000Z,synth01,1,2,3\n")
            if i in (4000, 5000):
                out.append(text.replace("2026-11-24T", "yesterday at ", 1))
            if len(out) >= 10_000:
                file.write("".join(out))
                out.clear()
        file.write("".join(out))
    last_k = n - 1 + GAP_STEPS
    return {"rows": rows, "first": T0, "last": T0 + last_k * STEP_US / 1e6}


def test_large_file_exact_numbers_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "whc_data.csv"
    n = 250_000
    expected = write_synthetic(path, n)
    size = path.stat().st_size
    import numpy  # noqa: F401  (the plots' numpy is code, loaded once; not what is measured)

    tracemalloc.start()
    try:
        report = build_report(path, Options(plots=True))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"{size / 1e6:.0f} MB file, peak traced memory {peak / 1e6:.1f} MB")
    assert peak < 16e6 and peak < size / 4, f"peak {peak / 1e6:.1f} MB"

    one, two = report.units
    assert (one.unit, two.unit) == ("synth01", "synth02")
    assert (one.rows, two.rows) == (expected["rows"]["synth01"], expected["rows"]["synth02"])
    assert one.first == pytest.approx(expected["first"], abs=1e-6)
    assert one.last == pytest.approx(expected["last"], abs=1e-6)
    assert one.median_interval == pytest.approx(0.01, rel=1e-6)
    assert one.mean_rate == pytest.approx(one.rows / (expected["last"] - expected["first"]), rel=1e-9)
    assert (one.gaps, two.gaps) == (1, 0)
    assert one.longest_gap == pytest.approx((GAP_STEPS + 1) * STEP_US / 1e6, abs=1e-5)
    assert one.top_gaps[0].start == pytest.approx(T0 + (GAP_AT - 1) * STEP_US / 1e6, abs=1e-5)
    assert (one.sessions, one.missing_seq, one.duplicate_seq, one.out_of_order) == (2, MISSING, 1, 1)
    assert (two.sessions, two.missing_seq, two.duplicate_seq, two.out_of_order) == (1, 0, 0, 0)
    assert one.offset_median_ms == pytest.approx(25, abs=0.01)
    assert one.offset_max_ms == pytest.approx(5000, abs=0.01)
    assert report.invalid.counts == {"wrong number of cells": 3, "unparsable time": 2}

    times, low, high, mean = report.envelopes["synth01"].series()
    acc_x = report.envelopes["synth01"].columns.index("acc_x")
    assert len(times) <= 2000
    assert high[:, acc_x].max() == 5.0 and mean[:, acc_x].max() < 1, "a one-sample spike survives downsampling"


def test_first_version_file_with_times_of_day_only(tmp_path: Path) -> None:
    """The user's original 11 columns, times without a date, across midnight: checks without columns say n/a."""
    path = tmp_path / "whc_data.csv"
    lines = [",".join(ORIGINAL_HEADER)]
    for i in range(200):  # 20 Hz from 23:59:55 to 00:00:05
        seconds = (86395 + i * 0.05) % 86400
        stamp = f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{seconds % 60:09.6f}"
        lines.append(f"{stamp},rpi01,1,2,3,0.1,0.2,0.3,0.01,0.02,0.99")
    path.write_text("\n".join(lines) + "\n")
    result = run_report(str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    unit = summary_rows(tmp_path / "out")["rpi01"]
    assert unit["rows"] == "200" and unit["time_backwards"] == "0" and unit["gaps"] == "0"
    assert float(unit["achieved_rate_hz"]) == pytest.approx(20, rel=0.01)
    for name in ("sessions", "missing_seq", "duplicate_seq", "clock_offset_median_ms", "clock_offset_max_ms"):
        assert unit[name] == "n/a", name
    assert "no seq, session or recv_time" in result.stdout
    assert_png(tmp_path / "out" / "rpi01.png")


def test_without_matplotlib_the_summary_is_written_and_one_line_says_how(tmp_path: Path) -> None:
    path = tmp_path / "whc_data.csv"
    write_synthetic(path, 3000)
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("matplotlib hidden by the test")\n')
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    result = run_report(str(path), env=env)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "report"
    assert set(summary_rows(out)) == {"synth01", "synth02"}
    assert (out / "summary.md").exists() and not list(out.glob("*.png"))
    hints = [line for line in result.stderr.splitlines() if "pip install -r requirements-report.txt" in line]
    assert len(hints) == 1


def test_progress_line_counts_bytes_of_both_passes(tmp_path: Path) -> None:
    path = tmp_path / "whc_data.csv"
    write_synthetic(path, 3000)
    stream = CsvStream(path)
    screen = io.StringIO()
    build_report(stream, Options(), Progress(stream.size, 2, screen, enabled=True))
    text = screen.getvalue()
    assert "\rreport: pass 1/2" in text and "\rreport: pass 2/2" in text
    assert text.endswith("\n") and "100%" in text.rsplit("\r", 1)[1]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "notes.csv").write_text("hello,world\n1,2\n")
    for args in (["missing.csv"], ["notes.csv"], ["--since", "last tuesday", "missing.csv"]):
        result = subprocess.run([PYTHON, str(ROOT / "report.py"), *args], capture_output=True, text=True,
                                timeout=60, cwd=tmp_path)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)

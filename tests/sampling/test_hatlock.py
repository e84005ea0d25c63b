"""One process per HAT: a second sender or --once is refused with one line naming the holder, exit 2."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

import pytest
from harness import PYTHON, ROOT, wait_for, write_config

from whc.exc import HatBusy
from whc.sampling.hatlock import HatLock, lock_hat, lock_path


def run_sender(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, str(ROOT / "launch_sender.py"), "--config", str(config), "--emulator", *args],
                          capture_output=True, text=True, timeout=60, cwd=config.parent)


def test_second_lock_is_refused_naming_the_holder(tmp_path: Path) -> None:
    with HatLock(tmp_path / "hat.lock") as first:
        assert (tmp_path / "hat.lock").read_text() == f"{os.getpid()}\n"
        with pytest.raises(HatBusy) as info:
            HatLock(tmp_path / "hat.lock").acquire()
        message = str(info.value)
        assert "\n" not in message and f"pid {os.getpid()}" in message and "one process per HAT" in message
        first.release()
        HatLock(tmp_path / "hat.lock").acquire().release()  # free again once released


def test_real_hat_is_locked_machine_wide_the_emulator_per_spool(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WHC_HAT_LOCK_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    assert lock_path(True, tmp_path / "spool") == tmp_path / "run" / "whc-sense-hat.lock"
    assert lock_path(False, tmp_path / "spool") == tmp_path / "spool" / "whc-sense-hat.lock"
    with lock_hat("sense_hat", tmp_path / "a"), pytest.raises(HatBusy):
        lock_hat("sense_hat", tmp_path / "b")  # another spool folder, same HAT
    with lock_hat("emulator", tmp_path / "a"):
        lock_hat("emulator", tmp_path / "b").release()  # emulated senders share the emulated HAT


def test_second_sender_and_once_are_refused_while_one_runs(server_factory, sender_factory, tmp_path: Path) -> None:
    server = server_factory(unit="rpi01", interval=0.05, fsync_interval=0.1)
    first = sender_factory(server.config_path).start()
    wait_for(lambda: len(server.rows()) >= 5, 20, what="the first sender's rows")
    for args in ((), ("--once",)):
        result = run_sender(server.config_path, *args)
        assert result.returncode == 2, result
        (line,) = result.stderr.strip().splitlines()
        assert f"in use by pid {first.proc.pid}" in line and "launch_sender.py" in line, line
        assert result.stdout == ""
    count = len(server.rows())
    wait_for(lambda: len(server.rows()) >= count + 10, 20, what="the first sender to keep sampling")
    assert first.proc.poll() is None
    assert first.stop() == 0
    state = first.spool_state()
    seqs = sorted(int(r["seq"]) for r in server.rows() if r["session"] == state["session"])
    assert seqs == list(range(len(seqs))), "nothing lost while the others were refused"


def test_once_runs_after_the_sender_stopped(tmp_path: Path) -> None:
    config = write_config(tmp_path, port=9, unit="rpi02")
    with HatLock(lock_path(False, tmp_path / "spool")):
        assert run_sender(config, "--once").returncode == 2
    result = run_sender(config, "--once")
    assert result.returncode == 0, result.stderr


def test_a_stale_pid_in_the_lock_file_is_not_named_as_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "hat.lock"
    path.write_text("999999999\n")  # a holder that could not record its PID (read-only file) left an old one
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(HatBusy, match=r"in use by another process \(pid 999999999 in the lock file has ended"):
            HatLock(path).acquire()
    finally:
        os.close(fd)

"""The interop tier: real third-party clients (rsyslog, syslog-ng, Node-RED) against a real server.

``bash scripts/test.sh`` installs them first (rsyslog from apt, syslog-ng unpacked from its .deb,
Node-RED from npm into a cache folder). Where one is missing the test is skipped with the command
that provides it, except under CI, where a missing tool fails the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import ROOT


def need(what: str, how: str) -> None:
    """Skip (or, under CI, fail) because ``what`` is not installed."""
    message = f"{what} is not installed: {how} (bash scripts/test.sh does it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def started() -> Iterator[Callable[..., subprocess.Popen]]:
    """Start a client program in the background; every one still running is stopped by its PID at the end."""
    procs: list[subprocess.Popen] = []

    def start(args: list[str], log: Path, **kwargs) -> subprocess.Popen:
        with open(log, "ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture(scope="session")
def rsyslogd() -> str:
    path = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
    if path is None:
        need("rsyslog", "apt install rsyslog")
    return path


@pytest.fixture(scope="session")
def syslog_ng() -> dict[str, object]:
    """How to run syslog-ng from its unpacked .deb: the command prefix and the environment."""
    result = subprocess.run(["bash", str(ROOT / "scripts" / "unpack_syslog_ng.sh")], capture_output=True, text=True,
                            timeout=300)
    if result.returncode != 0:
        need("syslog-ng", f"bash scripts/unpack_syslog_ng.sh failed: {result.stderr.strip()[-300:]}")
    folder = Path(result.stdout.strip())
    modules = sorted((folder / "usr" / "lib" / "syslog-ng").glob("[0-9]*"))
    libs = [folder / "usr" / "lib" / "syslog-ng", *sorted(folder.glob("usr/lib/*-linux-gnu")),
            *sorted(folder.glob("lib/*-linux-gnu"))]
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(str(p) for p in libs))
    return {"command": [str(folder / "usr" / "sbin" / "syslog-ng"), f"--module-path={modules[-1]}"],
            "version": modules[-1].name, "env": env}


@pytest.fixture(scope="session")
def node_red() -> list[str]:
    """The command that runs the pinned Node-RED."""
    node = shutil.which("node")
    if node is None:
        need("node", "apt install nodejs npm")
    result = subprocess.run(["bash", str(ROOT / "scripts" / "install_node_red.sh")], capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        need("Node-RED", f"bash scripts/install_node_red.sh failed: {result.stderr.strip()[-300:]}")
    return [node, str(Path(result.stdout.strip()) / "node_modules" / "node-red" / "red.js")]

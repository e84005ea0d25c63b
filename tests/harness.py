"""Test harness: real server and sender processes on loopback, and small real clients."""

from __future__ import annotations

import csv
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from whc.serving.listener import free_port

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)




def write_config(folder: Path, **settings: Any) -> Path:
    path = folder / "server.json"
    settings.setdefault("ip", "127.0.0.1")
    settings.setdefault("port", free_port())
    path.write_text(json.dumps(settings, indent=2))
    return path


class _Process:
    """A launched script whose stderr goes to ``stderr_path``."""

    stderr_path: Path
    proc: subprocess.Popen[str] | None
    prefix: tuple[str, ...] = ()  # run through this, e.g. ("ip", "netns", "exec", "NAME")

    def log_text(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.stderr.close()
        return code


class ServerProcess(_Process):
    """``launch_server.py`` in a subprocess, with its config in ``folder``."""

    def __init__(self, folder: Path, **settings: Any) -> None:
        self.folder = folder
        self.settings = settings
        self.config_path = write_config(folder, **settings)
        self.port = json.loads(self.config_path.read_text())["port"]
        self.proc: subprocess.Popen[str] | None = None
        self.stderr_path = folder / "server.stderr"

    @property
    def csv_path(self) -> Path:
        return self.folder / self.settings.get("csv", "whc_data.csv")

    @property
    def rejects_path(self) -> Path:
        return self.csv_path.with_name(self.csv_path.stem + ".rejects.jsonl")

    def start(self, *extra: str, wait: bool = True, preexec: Callable[[], None] | None = None,
              env: dict[str, str] | None = None) -> ServerProcess:
        self.stderr = open(self.stderr_path, "a")
        self._log_from = self.stderr_path.stat().st_size
        self.proc = subprocess.Popen(
            [*self.prefix, PYTHON, str(ROOT / "launch_server.py"), "--config", str(self.config_path), *extra],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True, cwd=self.folder, preexec_fn=preexec,
            env={**os.environ, **env} if env else None,
        )
        if wait:
            wait_for(self.listening, 15, what="server to listen")
        return self

    def listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited with {self.proc.returncode}: {self.log_text()[-2000:]}")
        return "listening on" in self.log_text()[self._log_from:]

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def rows(self) -> list[dict[str, str]]:
        return read_rows(self.csv_path)

    def rejects(self) -> list[dict[str, Any]]:
        if not self.rejects_path.exists():
            return []
        return [json.loads(line) for line in self.rejects_path.read_text().splitlines()]


class SenderProcess(_Process):
    """``launch_sender.py --emulator`` in a subprocess, reading ``config_path``."""

    def __init__(self, config_path: Path, name: str = "sender") -> None:
        self.config_path = config_path
        self.folder = config_path.parent
        self.stderr_path = self.folder / f"{name}.stderr"
        self.proc: subprocess.Popen[str] | None = None

    def start(self, *extra: str) -> SenderProcess:
        self.stderr = open(self.stderr_path, "a")
        self._log_from = self.stderr_path.stat().st_size
        self.proc = subprocess.Popen(
            [*self.prefix, PYTHON, str(ROOT / "launch_sender.py"), "--config", str(self.config_path), "--emulator",
             *extra],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True, cwd=self.folder,
        )
        wait_for(lambda: "session" in self.log_text()[self._log_from:] or self.proc.poll() is not None, 30,
                 what="sender to start")
        assert self.proc.poll() is None, self.log_text()
        return self

    def spool_state(self) -> dict[str, Any]:
        return json.loads((self.folder / "spool" / "state.json").read_text())

    def spooled(self) -> list[dict[str, Any]]:
        """Readings still waiting in the spool (unacknowledged)."""
        from whc.buffering import records

        acked = self.spool_state()["acked"]
        lines: list[dict[str, Any]] = []
        for segment in sorted((self.folder / "spool").glob("seg-*.jsonl")):
            for line in segment.read_bytes().splitlines(keepends=True):
                record = records.decode(line)
                assert record is not None, f"a damaged record in {segment.name}: {line[:80]!r}"
                if record[0] >= acked:
                    lines.append(json.loads(record[1]))
        return lines


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


class Client:
    """A plain TCP client on loopback, optionally speaking the hello/ack part of the protocol."""

    def __init__(self, port: int, acks: bool = False, source: str | None = None, host: str = "127.0.0.1",
                 tls: ssl.SSLContext | None = None, **hello: Any) -> None:
        self.sock = socket.create_connection((host, port), timeout=10, source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=host)
        self.file = self.sock.makefile("rb")
        self.acked = 0
        self.errors: list[dict[str, Any]] = []
        if acks or hello:
            self.send_raw(json.dumps({"hello": 1, "acks": acks, **hello}).encode() + b"\n")
            if acks:
                assert self.read() == {"ok": 1}

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, *readings: dict[str, Any]) -> None:
        self.send_raw(b"".join(json.dumps(r).encode() + b"\n" for r in readings))

    def read(self) -> dict[str, Any] | None:
        """The next line from the server, or None at EOF."""
        line = self.file.readline()
        if not line:
            return None
        message = json.loads(line)
        if "ack" in message:
            assert message["ack"] >= self.acked, "acks only grow"
            self.acked = message["ack"]
        elif "error" in message:
            self.errors.append(message)
        return message

    def wait_ack(self, count: int, timeout: float = 10.0) -> None:
        """Read until an ack covers ``count`` lines."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while self.acked < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"ack {count} not received (got {self.acked})")
            if self.read() is None:
                raise AssertionError(f"connection closed before ack {count} (got {self.acked})")

    def quiet(self, seconds: float) -> bool:
        """True if the server sends nothing for ``seconds``."""
        readable, _, _ = select.select([self.sock], [], [], seconds)
        return not readable

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def reading(sh_id: str = "rpi01", seq: int | None = None, session: str = "s1", **fields: Any) -> dict[str, Any]:
    """A valid reading with the original columns filled."""
    value = {"sh_id": sh_id, "ori_r": 1.5, "ori_p": -2.25, "ori_y": 359.0, "gyr_x": 0.001, "gyr_y": -0.002,
             "gyr_z": 0.0, "acc_x": 0.01, "acc_y": -0.99, "acc_z": 0.02}
    if seq is not None:
        value.update(session=session, seq=seq)
    value.update(fields)
    return value


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def http_get(port: int, path: str = "/", host: str = "127.0.0.1", timeout: float = 10.0) -> tuple[int, str]:
    """GET ``path`` from a local HTTP endpoint: (status code, body text)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as answer:
            return answer.status, answer.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def fleet_unit(port: int, sh_id: str) -> dict[str, Any] | None:
    """The unit's entry in the server's /status.json, or None while it has none."""
    code, body = http_get(port, "/status.json")
    assert code == 200, body
    return next((u for u in json.loads(body)["units"] if u["sh_id"] == sh_id), None)

"""A bad config stops the server at start with one line naming file, key and fix, and exit code 2."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
from harness import PYTHON, ROOT, free_port


def run_server(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, str(ROOT / "launch_server.py"), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=30)


def start_with(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "server.json"
    path.write_text(text)
    return run_server("--config", str(path), cwd=tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"ip": "127.0.0.1", "port": 5000,\n "csv": "x.csv" "x": 1}', "server.json:2:17: invalid JSON"),
        ('{"ip": "127.0.0.1", "port": 5000, "alowed_ips": []}', "(did you mean 'allowed_ips'?)"),
        ('{"ip": "127.0.0.1", "port": 5000, "allowed_ips": ["10.0.0.0/33"]}', "'10.0.0.0/33' is not an IPv4/IPv6"),
        ('{"ip": "127.0.0.1", "port": 70000}', "key 'port' must be an integer 1-65535"),
        ('{"ip": "127.0.0.1"}', "key 'port' is missing"),
        ('{"ip": "127.0.0.1", "port": 5000, "max_line_bytes": "big"}', "key 'max_line_bytes' must be an integer"),
        ("[]", "must hold a JSON object"),
        ('{"ip": "127.0.0.1", "port": 5000, "stats_interval": NaN}', "key 'stats_interval' must be a finite number"),
        ('{"ip": "127.0.0.1", "port": 5000, "idle_timeout": Infinity}', "key 'idle_timeout' must be a finite number"),
        ('{"ip": "127.0.0.1", "port": 5000, "ack_timeout": -Infinity}', "key 'ack_timeout' must be a finite number"),
    ],
)
def test_bad_config_fails_with_one_line(tmp_path: Path, text: str, expected: str) -> None:
    result = start_with(tmp_path, text)
    assert result.returncode == 2
    assert expected in result.stderr
    assert str(tmp_path / "server.json") in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_server("--config", str(tmp_path / "nope.json"), cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.json: file not found" in result.stderr and "--config" in result.stderr


def test_port_in_use(tmp_path: Path) -> None:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        result = start_with(tmp_path, json.dumps({"ip": "127.0.0.1", "port": port}))
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "whc_data.csv").exists(), "nothing is touched before the port is ours"


def test_check_config_prints_effective_settings(tmp_path: Path) -> None:
    path = tmp_path / "server.json"
    path.write_text('{"ip": "127.0.0.1", "port": 5000}')
    result = run_server("--config", str(path), "--check-config", cwd=tmp_path)
    assert result.returncode == 0
    settings = json.loads(result.stdout)
    assert settings["csv"] == str(tmp_path.resolve() / "whc_data.csv"), "paths as the server resolves them"
    assert settings["rejects"] == str(tmp_path.resolve() / "whc_data.rejects.jsonl")
    assert settings["max_line_bytes"] == 65536
    assert settings["allowed_ips"] == ["127.0.0.0/8", "::1/128"]


def test_sender_check_config_shows_what_it_would_run_with(tmp_path: Path) -> None:
    path = tmp_path / "server.json"
    path.write_text('{"ip": "127.0.0.1", "port": 5000}')
    result = subprocess.run([PYTHON, str(ROOT / "launch_sender.py"), "--config", str(path), "--emulator",
                             "--check-config"], capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)
    assert settings["backend"] == "emulator", "--emulator wins over the configured back end"
    assert settings["unit"] == socket.gethostname().split(".")[0], "the unit defaults to the hostname"
    assert settings["spool_dir"] == str(tmp_path.resolve() / "spool")


def test_shipped_config_is_valid_and_loopback_only() -> None:
    from whc import config

    settings = config.load(ROOT / "server.json")
    assert all(net.is_loopback for net in settings["allowed_ips"])


def test_unreadable_secret_file_names_the_config_once(tmp_path: Path) -> None:
    path = tmp_path / "server.json"
    path.write_text(json.dumps({"ip": "127.0.0.1", "port": free_port(), "token_file": "missing-token"}))
    result = run_server("--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "key 'token_file': cannot read" in line and "missing-token" in line
    assert line.count(str(path)) == 1, line


def test_per_address_limit_defaults_to_the_connection_limit(tmp_path: Path) -> None:
    from whc import config

    assert config.from_dict({"ip": "127.0.0.1", "port": 5000}, tmp_path / "s.json")["max_connections_per_ip"] == 1024
    settings = config.from_dict({"ip": "127.0.0.1", "port": 5000, "max_connections": 5000}, tmp_path / "s.json")
    assert settings["max_connections_per_ip"] == 5000

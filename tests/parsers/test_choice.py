"""The ``parser`` setting: which parser a real server runs, what its log says, and msgspec absent."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import msgspec
import pytest
from harness import PYTHON, ROOT, Client, reading, wait_for, write_config

from whc import config
from whc.exc import ConfigError
from whc.parsers import choose


def without_msgspec(folder: Path) -> dict[str, str]:
    """An environment in which ``import msgspec`` fails, as where it is not installed."""
    hide = folder / "hide-msgspec"
    hide.mkdir(exist_ok=True)
    (hide / "sitecustomize.py").write_text('import sys\nsys.modules["msgspec"] = None  # import msgspec fails\n')
    return {**os.environ, "PYTHONPATH": str(hide)}


@pytest.mark.parametrize(("setting", "hidden", "runs"), [
    ("auto", False, f"msgspec {msgspec.__version__}"),
    ("msgspec", False, f"msgspec {msgspec.__version__}"),
    ("stdlib", False, "stdlib"),
    ("auto", True, "stdlib"),
    ("stdlib", True, "stdlib"),
])
def test_the_log_names_the_parser_that_runs_and_it_stores_and_refuses(
        server_factory, tmp_path: Path, setting: str, hidden: bool, runs: str) -> None:
    server = server_factory(tmp_path, start=False, parser=setting)
    server.start(env=without_msgspec(tmp_path) if hidden else None)
    assert f"parser: {runs}" in server.log_text()
    client = Client(server.port, acks=True)
    client.send(reading(seq=0, acc_x=-0.0), reading(seq=1, col_r=255))
    client.send_raw(b'{"sh_id": "rpi01", "acc_x": true}\n')
    client.wait_ack(3)
    client.close()
    rows = server.rows()
    assert [(r["seq"], r["acc_x"], r["col_r"]) for r in rows] == [("0", "-0.0", ""), ("1", "0.01", "255")]
    assert client.errors == [{"error": "'acc_x' must be a number or null, got boolean", "line": 3}]


def test_msgspec_chosen_but_not_installed_stops_the_start_with_one_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, parser="msgspec")
    done = subprocess.run([PYTHON, str(ROOT / "launch_server.py"), "--config", str(path)], cwd=tmp_path,
                          env=without_msgspec(tmp_path), capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert str(path) in line and "key 'parser'" in line and "requirements-fast.txt" in line and '"stdlib"' in line


def test_the_setting_is_checked() -> None:
    with pytest.raises(ConfigError, match="key 'parser' must be one of 'auto', 'stdlib', 'msgspec'"):
        config.from_dict({"ip": "127.0.0.1", "port": 5000, "parser": "fast"}, Path("server.json"))
    assert config.from_dict({"ip": "127.0.0.1", "port": 5000}, Path("x.json"))["parser"] == "auto"
    assert choose("auto").name == "msgspec", "msgspec is a development dependency, so auto picks it here"
    assert choose("stdlib").name == "stdlib"


def test_a_server_without_msgspec_never_imports_it(server_factory, tmp_path: Path) -> None:
    server = server_factory(tmp_path, start=False)
    server.start(env=without_msgspec(tmp_path))
    wait_for(lambda: "parser: stdlib" in server.log_text(), what="the parser line")
    assert server.stop() == 0

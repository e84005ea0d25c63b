"""The recipes in docs/clients.md that need nothing but Python: they run as written against a real server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from docsnippets import fill, recipes
from harness import PYTHON, ROOT, wait_for

RECIPES = recipes("clients.md")


def test_every_client_has_a_recipe() -> None:
    assert set(RECIPES) == {"sender.json", "node-red-flow.json", "rsyslog.conf", "syslog-ng.conf", "telegraf.conf",
                            "fluent-bit.conf", "vector.toml", "client.py"}


def test_the_python_client_gets_all_its_readings_acknowledged(tmp_path: Path, server) -> None:
    script = tmp_path / "client.py"
    script.write_text(fill(RECIPES["client.py"], {'("127.0.0.1", 5000)': f'("127.0.0.1", {server.port})'}))
    assert len(RECIPES["client.py"].splitlines()) <= 15
    result = subprocess.run([PYTHON, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "stored or refused, all 100\n"
    assert [int(r["seq"]) for r in server.rows()] == list(range(100))


def test_the_sender_config_is_accepted(tmp_path: Path) -> None:
    config = tmp_path / "server.json"
    config.write_text(RECIPES["sender.json"])
    result = subprocess.run([PYTHON, str(ROOT / "launch_sender.py"), "--config", str(config), "--check-config"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["unit"] == "rpi03"


def test_the_readme_example_works_without_nc(tmp_path: Path, server) -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("## Wire protocol"):].split("```sh\n", 1)[1].split("```", 1)[0]
    assert "nc " not in block, "the example needs only python3"
    result = subprocess.run(["bash", "-c", block.replace("5000", str(server.port))], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: server.rows(), what="the README's reading")
    assert [(r["sh_id"], r["acc_z"]) for r in server.rows()] == [("test01", "0.99")]

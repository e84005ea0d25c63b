"""A real headless browser (Debian's chromium) shows the page; a stopped sender's row turns red."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from harness import SenderProcess, free_port, wait_for

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def browse(chromium: str, profile: Path, url: str, *args: str) -> str:
    """Load ``url`` in a fresh headless chromium; return what it printed (the DOM, for --dump-dom)."""
    result = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args, url], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def row_states(dom: str) -> dict[str, str]:
    """What a person sees per unit: each row's colour state, as the page marks it."""
    return dict(re.findall(r'<tr class="\w+" data-sh-id="([^"]+)" data-state="(\w+)"', dom))


def test_the_page_shows_a_stopped_unit_red(server_factory, need, tmp_path: Path) -> None:
    chromium = need("chromium", "chromium")
    http = free_port()
    server = server_factory(http_port=http, stats_interval=1)
    senders = {}
    for unit in ("rpi01", "rpi02"):
        folder = tmp_path / unit
        folder.mkdir()
        (folder / "server.json").write_text(json.dumps({"ip": "127.0.0.1", "port": server.port, "unit": unit,
                                                        "interval": 0.05, "stats_interval": 1}))
        senders[unit] = SenderProcess(folder / "server.json", unit).start()
    try:
        url = f"http://127.0.0.1:{http}/"
        profile = tmp_path / "chromium-profile"
        both_green = {"rpi01": "green", "rpi02": "green"}
        wait_for(lambda: row_states(browse(chromium, profile, url, "--dump-dom")) == both_green, 40, interval=0.5,
                 what="both units green in the browser")
        assert senders["rpi02"].stop() == 0
        seen = wait_for(lambda: (s := row_states(browse(chromium, profile, url, "--dump-dom")))["rpi02"] == "red"
                        and s, 40, interval=0.5, what="rpi02's row to turn red")
        assert seen["rpi01"] == "green", "the other unit stays green"
        browse(chromium, profile, url, "--window-size=1100,260", f"--screenshot={tmp_path / 'fleet.png'}")
        png = (tmp_path / "fleet.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    finally:
        for sender in senders.values():
            if sender.proc is not None and sender.proc.poll() is None:
                sender.stop()

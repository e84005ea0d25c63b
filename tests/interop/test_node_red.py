"""Node-RED, with the flow from docs/clients.md (inject -> function -> json -> tcp out), feeds a real server."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from docsnippets import fill, recipes
from harness import wait_for

SETTINGS = """module.exports = {
    uiHost: "127.0.0.1",
    uiPort: 0,
    httpAdminRoot: false,
    httpNodeRoot: false,
    flowFile: "flows.json",
    credentialSecret: false,
    telemetry: { enabled: false },
    logging: { console: { level: "info", metrics: false, audit: false } },
};
"""


def test_node_red_json_node_to_tcp_out_stores_every_message(tmp_path: Path, server, started, node_red) -> None:
    flow = fill(recipes("clients.md")["node-red-flow.json"], {
        '"port": "5000"': f'"port": "{server.port}"',
        '"repeat": "1"': '"repeat": "0.02"',  # 50 a second, so the test is short
    })
    assert len(json.loads(flow)) == 5
    user_dir = tmp_path / "node-red"
    user_dir.mkdir()
    (user_dir / "flows.json").write_text(flow)
    (user_dir / "settings.js").write_text(SETTINGS)  # headless: no editor, no HTTP, no telemetry
    log = tmp_path / "node-red.log"
    proc = started([*node_red, "--settings", str(user_dir / "settings.js"), "--userDir", str(user_dir)], log,
                   cwd=user_dir)
    wait_for(lambda: len(server.rows()) >= 100 or proc.poll() is not None, 90, interval=0.2,
             what="Node-RED to deliver 100 readings")
    assert proc.poll() is None, log.read_text()[-2000:]
    assert "connected to 127.0.0.1" in log.read_text()
    proc.terminate()
    proc.wait(30)
    rows = server.rows()
    assert server.rejects() == [], "objects sent back to back are framed one by one"
    assert {r["sh_id"] for r in rows} == {"nodered01"} and len({r["session"] for r in rows}) == 1
    assert [int(r["seq"]) for r in rows] == list(range(len(rows))), "none lost or repeated while connected"
    for row in rows:
        sent = datetime.fromisoformat(row["time"])
        received = datetime.fromisoformat(row["recv_time"])
        assert abs((received - sent).total_seconds()) < 60, "time as Unix seconds from Date.now() / 1000"
        assert (row["acc_x"], row["acc_z"]) == ("0.012", "0.998")

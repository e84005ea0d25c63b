"""rsyslog and syslog-ng, configured as docs/clients.md says, ship readings from files to a real server."""

from __future__ import annotations

import json
from pathlib import Path

from docsnippets import fill, recipes
from harness import wait_for

RECIPES = recipes("clients.md")


def json_lines(path: Path, sh_id: str, count: int, start: int = 0) -> None:
    """Append ``count`` readings as JSON lines, numbered from ``start`` in an extra key ``n``.

    No session and seq: rsyslog may reorder lines (docs/clients.md), and the server would take
    a seq below the highest stored as a resend.
    """
    with open(path, "a") as file:
        for n in range(start, start + count):
            file.write(json.dumps({"sh_id": sh_id, "acc_x": "0.0120", "gyr_x": -1.5e-7, "acc_z": 0.998, "n": n})
                       .replace('"0.0120"', "0.0120") + "\n")


def numbers(rows: list[dict[str, str]]) -> list[int]:
    """The ``n`` of each row, in the order stored."""
    return [json.loads(r["extra"])["n"] for r in rows]


def test_rsyslog_tails_a_file_and_forwards_every_line_across_a_server_restart(
        tmp_path: Path, server_factory, started, rsyslogd: str) -> None:
    server = server_factory()
    readings = tmp_path / "readings.jsonl"
    json_lines(readings, "rs01", 3000)
    work = tmp_path / "rsyslog-work"
    work.mkdir()
    config = tmp_path / "rsyslog.conf"
    config.write_text(f'global(workDirectory="{work}")\n' + fill(RECIPES["rsyslog.conf"], {
        "/var/lib/whc/readings.jsonl": readings, 'port="5000"': f'port="{server.port}"'}))
    # a private rsyslogd: its own config, pid file and work folder, in the foreground, stopped by PID
    rsyslog = started([rsyslogd, "-n", "-f", str(config), "-i", str(tmp_path / "rsyslogd.pid")],
                      tmp_path / "rsyslogd.log")
    wait_for(lambda: set(numbers(server.rows())) == set(range(3000)), 60, interval=0.2,
             what="rsyslog to deliver 3000 lines")
    assert server.stop() == 0
    json_lines(readings, "rs01", 2000, start=3000)  # written while the server is down
    server.start()
    wait_for(lambda: set(numbers(server.rows())) == set(range(5000)), 60, interval=0.2,
             what="rsyslog to deliver the lines it queued while the server was down")
    rsyslog.terminate()
    assert rsyslog.wait(30) == 0
    rows = server.rows()
    repeated = sorted(numbers(rows))
    for n in range(5000):
        repeated.remove(n)
    # omfwd has no acks: the line in flight when the server went away may come again (docs/clients.md)
    assert all(n >= 3000 for n in repeated) and len(repeated) <= 5, repeated
    assert (rows[0]["acc_x"], rows[0]["gyr_x"], rows[0]["acc_z"]) == ("0.0120", "-1.5e-07", "0.998")
    assert server.rejects() == []


def test_syslog_ng_with_flow_control_sends_json_lines_and_key_value_lines(
        tmp_path: Path, server_factory, started, syslog_ng: dict) -> None:
    server = server_factory()
    readings = tmp_path / "readings.jsonl"
    json_lines(readings, "sng01", 1000)
    key_values = tmp_path / "readings.kv"
    key_values.write_text("".join(f"sh_id=sng02 acc_x=0.0120 acc_z=0.998 gyr_x=-1.5e-7 ori_r={n}\n"
                                  for n in range(1000)))
    config = tmp_path / "syslog-ng.conf"
    config.write_text(f"@version: {syslog_ng['version']}\n" + fill(RECIPES["syslog-ng.conf"], {
        "/var/lib/whc/readings.jsonl": readings, "/var/lib/whc/readings.kv": key_values,
        "port(5000)": f"port({server.port})"}))
    files = {name: str(tmp_path / f"syslog-ng.{name}") for name in ("pid", "ctl", "persist")}
    proc = started([*syslog_ng["command"], "-F", "--no-caps", "-e", "-f", str(config), "-p", files["pid"],
                    "-c", files["ctl"], "-R", files["persist"]], tmp_path / "syslog-ng.log", env=syslog_ng["env"])
    wait_for(lambda: len(server.rows()) >= 2000, 60, interval=0.2, what="syslog-ng to deliver 2000 lines")
    assert server.stop() == 0
    json_lines(readings, "sng01", 1000, start=1000)  # written while the server is down
    server.start()
    wait_for(lambda: sum(r["sh_id"] == "sng01" for r in server.rows()) >= 2000, 60, interval=0.2,
             what="syslog-ng to reconnect and send the lines written while the server was down")
    proc.terminate()
    assert proc.wait(30) == 0
    rows = server.rows()
    from_json = [r for r in rows if r["sh_id"] == "sng01"]
    from_kv = [r for r in rows if r["sh_id"] == "sng02"]
    assert sorted(numbers(from_json)) == list(range(2000)), "every line once"
    assert {(r["acc_x"], r["gyr_x"], r["acc_z"]) for r in from_json} == {("0.0120", "-1.5e-07", "0.998")}
    assert [r["ori_r"] for r in from_kv] == [str(n) for n in range(1000)], "number strings stored as numbers"
    assert {(r["acc_x"], r["gyr_x"], r["acc_z"]) for r in from_kv} == {("0.0120", "-1.5e-7", "0.998")}
    assert all(r["time"].endswith("Z") and r["time"][:10] == r["recv_time"][:10] for r in from_kv), "time=${ISODATE}"
    assert server.rejects() == []

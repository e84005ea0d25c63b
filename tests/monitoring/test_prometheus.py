"""A real Prometheus (Debian's package) scrapes /metrics; promtool checks the format and the alert rules."""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from harness import ROOT, Client, free_port, http_get, reading, wait_for

RULES = ROOT / "deploy" / "prometheus"
REQUIRED = ["whc_readings_written_total", "whc_readings_rejected_total", "whc_readings_duplicate_total",
            "whc_connections", "whc_pending_bytes", "whc_writes_failing", 'whc_unit_connected{sh_id="rpi01"}',
            'whc_unit_readings_total{sh_id="rpi01"}', 'whc_unit_last_reading_timestamp_seconds{sh_id="rpi01"}',
            'whc_unit_backlog_readings{sh_id="rpi01"}', 'whc_unit_dropped_readings_total{sh_id="rpi01"}',
            'whc_unit_clock_offset_seconds{sh_id="rpi01"}']


def fleet_server(server_factory) -> tuple[int, Client]:
    """A server with HTTP on and one unit that sent readings and a status line."""
    http = free_port()
    server = server_factory(http_port=http)
    client = Client(server.port, acks=True, sh_id="rpi01", status=True)
    client.send_raw(b'{"status": 1, "backlog": 3, "dropped": 0, "clock_synced": true}\n')
    client.send(*[reading("rpi01", seq, time=datetime.now(UTC).isoformat()) for seq in range(10)])
    client.wait_ack(10)
    wait_for(lambda: 'whc_unit_clock_offset_seconds{sh_id="rpi01"}' in http_get(http, "/metrics")[1],
             what="a snapshot with the unit")
    return http, client


def test_metrics_pass_promtool_check(server_factory, need) -> None:
    promtool = need("promtool", "prometheus")
    http, client = fleet_server(server_factory)
    code, text = http_get(http, "/metrics")
    assert code == 200
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if not line.startswith("#")}
    assert all(name in samples for name in REQUIRED), set(REQUIRED) - set(samples)
    assert samples['whc_unit_readings_total{sh_id="rpi01"}'] == 10 and samples["whc_readings_written_total"] == 10
    assert samples['whc_unit_backlog_readings{sh_id="rpi01"}'] == 3 and samples["whc_writes_failing"] == 0
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check
    client.close()


def test_alert_rules_pass_their_promtool_tests(need) -> None:
    promtool = need("promtool", "prometheus")
    result = subprocess.run([promtool, "test", "rules", "whc-alerts.test.yml"], cwd=RULES, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_real_prometheus_scrapes_the_server(server_factory, tmp_path: Path, need) -> None:
    binary = need("prometheus", "prometheus")
    http, client = fleet_server(server_factory)
    folder = tmp_path / "prometheus"
    folder.mkdir()
    web = free_port()
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(RULES / "whc-alerts.yml")],
              "scrape_configs": [{"job_name": "whc", "static_configs": [{"targets": [f"127.0.0.1:{http}"]}]}]}
    (folder / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    with open(folder / "prometheus.log", "w") as log:
        proc = subprocess.Popen([binary, f"--config.file={folder / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{web}"],
                                stdout=log, stderr=log, cwd=folder)
    try:
        def stored() -> list:
            try:
                code, body = http_get(web, "/api/v1/query?query=whc_unit_readings_total", timeout=2)
            except OSError:
                assert proc.poll() is None, (folder / "prometheus.log").read_text()[-2000:]
                return []
            return json.loads(body)["data"]["result"] if code == 200 else []

        (series,) = wait_for(stored, 40, interval=0.5, what="Prometheus to scrape the unit's readings")
        assert series["metric"]["sh_id"] == "rpi01" and series["metric"]["job"] == "whc"
        assert float(series["value"][1]) == 10
        code, body = http_get(web, "/api/v1/targets")
        (target,) = json.loads(body)["data"]["activeTargets"]
        assert target["health"] == "up", target
        code, body = http_get(web, "/api/v1/rules")
        assert code == 200 and {r["name"] for g in json.loads(body)["data"]["groups"] for r in g["rules"]} >= {
            "WhcUnitSilent", "WhcUnitStalled", "WhcWritesFailing", "WhcUnitClockOff"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    client.close()

"""``/metrics``: the fleet snapshot in the Prometheus text exposition format (version 0.0.4)."""

from __future__ import annotations

from typing import Any

# (name, type, help, value from the server view)
_SERVER = (
    ("whc_readings_written_total", "counter", "Readings written to the sink since start.",
     lambda s: s["readings_written_total"]),
    ("whc_readings_rejected_total", "counter", "Lines rejected (and kept in the rejects log) since start.",
     lambda s: s["readings_rejected_total"]),
    ("whc_readings_duplicate_total", "counter", "Resent readings recognised as already stored since start.",
     lambda s: s["readings_duplicate_total"]),
    ("whc_connections", "gauge", "Client connections open now.", lambda s: s["connections"]),
    ("whc_pending_bytes", "gauge", "Bytes received but not yet durably stored.", lambda s: s["pending_bytes"]),
    ("whc_writes_failing", "gauge", "1 while writes to the sink fail (acknowledgements stopped), else 0.",
     lambda s: int(s["writes_failing"])),
    ("whc_connections_refused_total", "counter",
     "Connections refused since start: by allowed_ips or limits, or for failing a security check.",
     lambda s: s["connections_refused_total"]),
    ("whc_start_time_seconds", "gauge", "When the server started (Unix time).", lambda s: s["started_timestamp"]),
)


def _health(key: str):
    return lambda u: (u["sender"] or {}).get(key)


def _flag(value: Any) -> int | None:
    return None if value is None else int(bool(value))


# (name, type, help, value from a unit view; None leaves the unit's sample out)
_UNIT = (
    ("whc_unit_connected", "gauge", "1 if the unit has a connection open, else 0.", lambda u: int(u["connected"])),
    ("whc_unit_readings_total", "counter", "Readings of the unit stored since the server started.",
     lambda u: u["readings_total"]),
    ("whc_unit_duplicate_total", "counter", "Resent readings of the unit that were already stored.",
     lambda u: u["duplicates_total"]),
    ("whc_unit_rejected_total", "counter", "Lines of the unit's connections that were rejected.",
     lambda u: u["rejected_total"]),
    ("whc_unit_readings_per_second", "gauge", "Readings stored per second over the last minute.",
     lambda u: u["rate"]),
    ("whc_unit_last_reading_timestamp_seconds", "gauge", "Sample time of the newest stored reading (sender clock).",
     lambda u: u["last_reading_timestamp"]),
    ("whc_unit_last_received_timestamp_seconds", "gauge", "Receive time of the newest stored reading (server clock).",
     lambda u: u["last_received_timestamp"]),
    ("whc_unit_silent", "gauge", "1 if the unit delivered and then nothing for silent_after seconds.",
     lambda u: int(u["silent"])),
    ("whc_unit_stalled", "gauge", "1 if connected, its backlog grows and nothing new is stored.",
     lambda u: int(u["stalled"])),
    ("whc_unit_seq_missing_total", "counter", "Readings missing from gaps in seq seen live.",
     lambda u: u["seq_missing"]),
    ("whc_unit_clock_offset_seconds", "gauge", "Median of receive time minus sample time over recent live readings.",
     lambda u: u["clock_offset_seconds"]),
    ("whc_unit_backlog_readings", "gauge", "Readings not yet acknowledged, at the sender's last report.",
     _health("backlog")),
    ("whc_unit_spooled_bytes", "gauge", "Bytes in the sender's spool, at its last report.", _health("spooled_bytes")),
    ("whc_unit_dropped_readings_total", "counter", "Readings the sender dropped by a limit (full spool).",
     _health("dropped")),
    ("whc_unit_imu_failures_total", "counter", "Failed IMU reads the sender reported.", _health("imu_failures")),
    ("whc_unit_sample_rate", "gauge", "Readings per second the sender says it achieved.", _health("rate")),
    ("whc_unit_cpu_temperature_celsius", "gauge", "The sender's CPU temperature.", _health("cpu_temp")),
    ("whc_unit_uptime_seconds", "gauge", "Seconds since the sender started.", _health("uptime")),
    ("whc_unit_clock_synchronized", "gauge", "1 if the sender's clock is NTP-synchronised, 0 if not.",
     lambda u: _flag((u["sender"] or {}).get("clock_synced"))),
    ("whc_unit_status_age_seconds", "gauge", "Seconds since the sender's last status report.",
     _health("age_seconds")),
)


def render(snapshot: dict[str, Any]) -> str:
    """The exposition text: HELP and TYPE once per family, then its samples."""
    out: list[str] = []
    server = snapshot["server"]
    for name, kind, text, get in _SERVER:
        out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {_value(get(server))}"]
    units = snapshot["units"]
    for name, kind, text, get in _UNIT:
        samples = [(u["sh_id"], get(u)) for u in units]
        samples = [(sh_id, value) for sh_id, value in samples if value is not None]
        out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        out += [f'{name}{{sh_id="{_label(sh_id)}"}} {_value(value)}' for sh_id, value in samples]
    return "\n".join(out) + "\n"


def _value(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def _label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

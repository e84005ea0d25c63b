"""``/``: one self-contained HTML page of the fleet (no scripts, fonts or anything fetched), refreshing itself."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from .timetext import duration
from .units import BIN_SECONDS, HISTORY_BINS

REFRESH_SECONDS = 5
CLOCK_LIMIT = 2.0  # seconds of clock offset shown as a problem

_STYLE = """
body{font:15px/1.4 system-ui,sans-serif;margin:1.2em;background:#f7f7f5;color:#222}
h1{font-size:1.3em;margin:0 0 .2em}
.sub{color:#666;margin-bottom:1em}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 3px #0002}
th,td{padding:.35em .7em;text-align:right;border-bottom:1px solid #eee;white-space:nowrap}
th{background:#eee;font-weight:600}
td.l,th.l{text-align:left}
tr.red td.state{background:#d93025;color:#fff}
tr.amber td.state{background:#f2a600;color:#000}
tr.green td.state{background:#1e8e3e;color:#fff}
td.state{font-weight:700;text-align:left}
.bad{color:#c5221f;font-weight:600}
.none{color:#999}
.server{margin:.8em 0;color:#444}
.failing{background:#d93025;color:#fff;padding:.3em .6em;font-weight:700}
svg{vertical-align:middle}
"""


def render(snapshot: dict[str, Any]) -> str:
    """The page for one snapshot."""
    server = snapshot["server"]
    now = datetime.fromtimestamp(snapshot["time"], UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    counts = {c: sum(1 for u in snapshot["units"] if u["state"] == c) for c in ("green", "amber", "red")}
    rows = "\n".join(_row(u) for u in snapshot["units"]) or '<tr><td class="l" colspan="10">no units yet</td></tr>'
    failing = (f'<div class="failing">WRITES FAILING: {html.escape(str(server["writes_failing_reason"]))}</div>'
               if server["writes_failing"] else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>whc fleet: {counts["red"]} red, {counts["amber"]} amber, {counts["green"]} green</title>
<style>{_STYLE}</style></head>
<body>
<h1>Sense HAT fleet</h1>
<div class="sub">{now} &middot; refreshes every {REFRESH_SECONDS} s &middot; silent after {snapshot["silent_after"]:g} s
&middot; {counts["green"]} green, {counts["amber"]} amber, {counts["red"]} red</div>
{failing}
<table id="units">
<thead><tr><th class="l">state</th><th class="l">unit</th><th>rate /s</th><th class="l">last 10 min</th>
<th>last seen</th><th>backlog</th><th>clock offset</th><th>stored</th><th>seq gaps</th>
<th class="l">from</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<div class="server">server: {server["readings_written_total"]} written, {server["readings_duplicate_total"]} duplicates,
{server["readings_rejected_total"]} rejected, {server["connections"]} connections,
{server["pending_bytes"]} bytes pending</div>
</body></html>
"""


def _row(unit: dict[str, Any]) -> str:
    sh_id = html.escape(unit["sh_id"])
    state = unit["state"]
    sender = unit["sender"] or {}
    since = unit["seconds_since_reading"]
    last_seen = _none("never") if since is None else f'{duration(since)} ago'
    backlog = sender.get("backlog")
    offset = unit["clock_offset_seconds"]
    synced = sender.get("clock_synced")
    clock = _none("?") if offset is None else f"{offset:+.3f} s"
    if offset is not None and abs(offset) > CLOCK_LIMIT:
        clock = f'<span class="bad">{clock}</span>'
    if synced is False:
        clock += ' <span class="bad">not synced</span>'
    gaps = unit["seq_missing"]
    return (f'<tr class="{state}" data-sh-id="{sh_id}" data-state="{state}">'
            f'<td class="state" title="{html.escape(unit["state_reason"])}">{state} &middot; '
            f'{html.escape(unit["state_reason"])}</td>'
            f'<td class="l"><b>{sh_id}</b></td><td>{unit["rate"]:.1f}</td>'
            f'<td class="l">{sparkline(unit["rate_history"])}</td>'
            f'<td>{last_seen}</td><td>{_none("?") if backlog is None else backlog}</td><td>{clock}</td>'
            f'<td>{unit["readings_total"]}</td>'
            f'<td>{f"<span class=bad>{gaps}</span>" if gaps else 0}</td>'
            f'<td class="l">{html.escape(unit["address"] or "")}</td></tr>')


def sparkline(values: list[float], slots: int = HISTORY_BINS, width: int = 160, height: int = 24) -> str:
    """An inline SVG polyline of ``values`` (oldest first) on a fixed axis of ``slots`` points, newest at the
    right edge, scaled to its own maximum; pairs of points are averaged (a pixel or two each is plenty)."""
    label = f"rate over the last {slots * BIN_SECONDS // 60} minutes"
    values = values[-slots:]
    if len(values) % 2:
        values = values[1:]
    values = [(a + b) / 2 for a, b in zip(values[::2], values[1::2], strict=True)]
    if len(values) < 2:
        return f'<svg width="{width}" height="{height}" role="img" aria-label="{label}: no history yet"></svg>'
    top = max(values) or 1.0
    step = width / (slots // 2 - 1)
    left = width - (len(values) - 1) * step
    scale = (height - 4) / top
    points = " ".join(f"{left + i * step:.0f},{height - 2 - v * scale:.0f}" for i, v in enumerate(values))
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{label}, up to {top:.1f}/s"><line x1="0" y1="{height - 1}" x2="{width}" '
            f'y2="{height - 1}" stroke="#ddd"/><polyline fill="none" stroke="#1a73e8" stroke-width="1.5" '
            f'points="{points}"/></svg>')


def _none(text: str) -> str:
    return f'<span class="none">{text}</span>'

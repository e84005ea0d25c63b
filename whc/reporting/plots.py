"""One PNG per unit: a panel per sensor group and unit of measure over UTC time (matplotlib, imported lazily).

Each line is the mean of a time bucket, with the bucket's min-max range shaded around it, so spikes
stay visible however long the recording. The line breaks where a unit sent nothing for longer than
its gap threshold; the longest gaps are shaded red and each new session is a dashed line.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..columns import COLUMNS
from .stream import display_time
from .summary import UnitSummary

if TYPE_CHECKING:
    import numpy as np

    from .envelope import Envelope

INSTALL_HINT = "pip install -r requirements-report.txt"
PANEL_NAMES = {
    ("magnetometer", "degrees"): "heading",
    ("environment", "degC"): "temperature",
    ("environment", "%RH"): "humidity",
    ("environment", "hPa"): "pressure",
    ("cpu_temp", "degC"): "CPU temperature",
}
PRETTY_UNITS = {"degC": "°C", "uT": "µT", "degrees": "°"}
MAX_SESSION_LINES = 30
DPI = 100


def unavailable() -> str | None:
    """None if plots can be made, else the one line that says why not and what to do."""
    try:
        import matplotlib  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        return f"plots skipped: matplotlib is not installed ({INSTALL_HINT})"
    return None


def panels(columns: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """(axis label, columns) per panel: the columns of one sensor group that share a unit of measure."""
    meta = {c.name: c for c in COLUMNS}
    found: dict[tuple[str, str], list[str]] = {}
    for name in columns:
        column = meta[name]
        found.setdefault((column.group or "", column.unit), []).append(name)
    labels = []
    for (group, unit), names in found.items():
        title = PANEL_NAMES.get((group, unit), group.replace("_", " "))
        labels.append((f"{title} ({PRETTY_UNITS.get(unit, unit)})", names))
    return labels


def plot_unit(summary: UnitSummary, envelope: Envelope, path: Path, dateless: bool = False) -> None:
    """Write ``summary.unit``'s PNG to ``path``."""
    import numpy as np
    from matplotlib import dates
    from matplotlib.figure import Figure

    x, low, high, mean = _with_breaks(*envelope.series(), limit=_break_after(summary, envelope))
    when = (x * 1e6).astype("datetime64[us]")
    layout = panels(envelope.columns)
    figure = Figure(figsize=(11, 1.2 + 1.9 * len(layout)), dpi=DPI, layout="constrained")
    axes = figure.subplots(len(layout), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, names) in zip(axes, layout, strict=True):
        for name in names:
            at = envelope.columns.index(name)
            line, = ax.plot(when, mean[:, at], linewidth=0.9, label=name, marker="." if len(x) < 100 else None)
            ax.fill_between(when, low[:, at], high[:, at], color=line.get_color(), alpha=0.25, linewidth=0)
        ax.set_ylabel(label)
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")  # 1013.01 hPa, not +1.013e3
        ax.grid(True, linewidth=0.4, alpha=0.6)
        _mark_gaps_and_sessions(ax, summary)
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize="small", frameon=False)
    if summary.span < 2:  # one reading or a moment: a few seconds around it, not years
        middle = np.datetime64(int((summary.first + summary.last) / 2 * 1e6), "us")
        axes[-1].set_xlim(middle - np.timedelta64(2, "s"), middle + np.timedelta64(2, "s"))
    locator = dates.AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(dates.ConciseDateFormatter(locator, show_offset=not dateless))
    axes[-1].set_xlabel("time of day (the file has no dates)" if dateless else "time (UTC)")
    figure.suptitle(_title(summary, dateless), fontsize="medium")
    _save(figure, path)


def _save(figure: Any, path: Path) -> None:
    """The PNG as 256 colours (a third of the size; line plots look the same). Pillow comes with matplotlib."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    buffer.seek(0)
    try:
        from PIL import Image
    except ImportError:
        path.write_bytes(buffer.getvalue())
        return
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)


def _title(summary: UnitSummary, dateless: bool) -> str:
    first, last = display_time(summary.first, dateless), display_time(summary.last, dateless)
    if not dateless and first[:10] == last[:10]:
        last = last[11:]
    sessions = ""
    if summary.sessions and summary.sessions > 1:
        sessions = f", {summary.sessions} sessions (dashed)"
    gaps = ""
    if summary.gaps:
        gaps = f", {summary.gaps:,} gap{'s' if summary.gaps > 1 else ''} (red, longest {summary.longest_gap:,.1f} s)"
    zone = "" if dateless else " UTC"
    rate = f", mean {summary.mean_rate:,.1f}/s" if summary.mean_rate else ""
    return (f"{summary.unit}: {first} to {last}{zone}\n"
            f"{summary.rows:,} reading{'s' if summary.rows != 1 else ''}{rate}{sessions}{gaps}; "
            "line: mean, band: min to max per time bucket")


def _break_after(summary: UnitSummary, envelope: Envelope) -> float:
    """Distance between buckets' times beyond which the line is broken (no readings in between)."""
    return max(summary.gap_threshold or 0.0, 2 * envelope.width)


def _with_breaks(x: np.ndarray, *series: np.ndarray, limit: float) -> tuple[np.ndarray, ...]:
    """Insert a NaN row wherever consecutive x are more than ``limit`` apart, so lines break there."""
    import numpy as np

    if len(x) < 2:
        return (x, *series)
    at = np.flatnonzero(np.diff(x) > limit) + 1
    return (np.insert(x, at, x[at - 1] + limit / 2),
            *(np.insert(s, at, np.nan, axis=0) for s in series))


def _mark_gaps_and_sessions(ax: Any, summary: UnitSummary) -> None:
    import numpy as np

    for gap in summary.top_gaps:
        start = np.datetime64(int(gap.start * 1e6), "us")
        ax.axvspan(start, start + np.timedelta64(int(gap.seconds * 1e6), "us"), color="red", alpha=0.15,
                   linewidth=0)
    for first in summary.session_starts[1:MAX_SESSION_LINES + 1]:
        ax.axvline(np.datetime64(int(first * 1e6), "us"), color="0.3", linestyle="--", linewidth=0.8)

"""The summary as text: a table for the terminal, summary.csv and summary.md, with the notes that explain it."""

from __future__ import annotations

import csv
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .build import Report
from .stream import display_time, iso_time
from .summary import UnitSummary

NA = "n/a"
OFFSET_WARN_MS = 1000.0  # a median clock offset beyond this gets a note


@dataclass(frozen=True)
class Field:
    """One summary column: its CSV name, its short title for the terminal and Markdown, and its value."""

    name: str
    title: str
    value: Callable[[UnitSummary, Report], object]
    text: Callable[[UnitSummary, Report], str]


def _num(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return NA
    return f"{value:,}" if isinstance(value, int) else f"{value:,.{digits}f}"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


FIELDS = (
    Field("unit", "unit", lambda u, r: u.unit, lambda u, r: u.unit or "(empty)"),
    Field("rows", "rows", lambda u, r: u.rows, lambda u, r: _num(u.rows)),
    Field("first_time", "first (UTC)", lambda u, r: iso_time(u.first, r.dateless),
          lambda u, r: display_time(u.first, r.dateless)),
    Field("last_time", "last (UTC)", lambda u, r: iso_time(u.last, r.dateless),
          lambda u, r: display_time(u.last, r.dateless)),
    Field("span_s", "span (s)", lambda u, r: round(u.span, 6), lambda u, r: _num(u.span, 1)),
    Field("mean_rate_hz", "mean rate (Hz)", lambda u, r: u.mean_rate, lambda u, r: _num(u.mean_rate)),
    Field("achieved_rate_hz", "achieved rate (Hz)", lambda u, r: u.achieved_rate,
          lambda u, r: _num(u.achieved_rate)),
    Field("median_interval_ms", "median interval (ms)", lambda u, r: _ms(u.median_interval),
          lambda u, r: _num(_ms(u.median_interval))),
    Field("gaps", "gaps", lambda u, r: u.gaps, lambda u, r: _num(u.gaps)),
    Field("longest_gap_s", "longest gap (s)", lambda u, r: u.longest_gap, lambda u, r: _num(u.longest_gap)),
    Field("sessions", "sessions", lambda u, r: u.sessions, lambda u, r: _num(u.sessions)),
    Field("missing_seq", "missing seq", lambda u, r: u.missing_seq, lambda u, r: _num(u.missing_seq)),
    Field("duplicate_seq", "duplicate seq", lambda u, r: u.duplicate_seq, lambda u, r: _num(u.duplicate_seq)),
    Field("time_backwards", "time backwards", lambda u, r: u.out_of_order, lambda u, r: _num(u.out_of_order)),
    Field("clock_offset_median_ms", "clock offset (ms)", lambda u, r: u.offset_median_ms,
          lambda u, r: _num(u.offset_median_ms, 1)),
    Field("clock_offset_max_ms", "max delay (ms)", lambda u, r: u.offset_max_ms,
          lambda u, r: _num(u.offset_max_ms, 1)),
)
TEXT_ALIGN_LEFT = {"unit", "first_time", "last_time"}


def cells(report: Report) -> list[list[str]]:
    """The table as text: a title row, then one row per unit."""
    return [[f.title for f in FIELDS]] + [[f.text(u, report) for f in FIELDS] for u in report.units]


def terminal(report: Report, width: int | None = None) -> str:
    """The summary for the terminal: what was read, the table (a line per figure, a column per unit,
    in as many blocks as the terminal's width needs), the notes."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    lines = [_heading(report), ""]
    rows = cells(report)
    if report.units:
        titles, units = rows[0], rows[1:]  # printed turned: a line per title, a column per unit
        label_width = max(len(title) for title in titles)
        block: list[list[str]] = []
        for column in units:
            block.append(column)
            used = label_width + sum(max(len(c) for c in col) + 3 for col in block)
            if used > width and len(block) > 1:
                lines += _block(titles, block[:-1], label_width) + [""]
                block = block[-1:]
        lines += _block(titles, block, label_width)
    else:
        lines.append("no readings" + (" in the chosen window or units" if _filtered(report) else ""))
    lines.append("")
    for note in notes(report):
        lines += textwrap.wrap(note, max(width, 60), initial_indent="- ", subsequent_indent="  ")
    return "\n".join(lines)


def _block(titles: list[str], units: list[list[str]], label_width: int) -> list[str]:
    widths = [max(len(c) for c in column) for column in units]
    out = []
    for at, title in enumerate(titles):
        cells_ = [column[at].rjust(w) for column, w in zip(units, widths, strict=True)]
        out.append(title.ljust(label_width) + "   " + "   ".join(cells_))
        if at == 0:
            out.append("-" * len(out[-1]))
    return out


def write_csv(report: Report, path: Path) -> None:
    """summary.csv: one row per unit, machine-friendly numbers, n/a where a check does not apply."""
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([f.name for f in FIELDS])
        for unit in report.units:
            writer.writerow([_csv_value(f.value(unit, report)) for f in FIELDS])


def _csv_value(value: object) -> object:
    if value is None:
        return NA
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.3f}"
    return value


def write_markdown(report: Report, path: Path, images: dict[str, str]) -> None:
    """summary.md: the table, each unit's longest gaps, the notes and the plots."""
    out = [f"# whc report: {report.path.name}", "", _heading(report), ""]
    if report.units:
        rows = cells(report)
        out.append("| " + " | ".join(rows[0]) + " |")
        out.append("|" + "|".join("---" if f.name in TEXT_ALIGN_LEFT else "---:" for f in FIELDS) + "|")
        out.extend("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows[1:])
    else:
        out.append("No readings" + (" in the chosen window or units." if _filtered(report) else "."))
    gapped = [u for u in report.units if u.top_gaps]
    if gapped:
        out += ["", "## Longest gaps", ""]
        for unit in gapped:
            more = f" (the {len(unit.top_gaps)} longest of {unit.gaps})" if unit.gaps > len(unit.top_gaps) else ""
            out.append(f"**{unit.unit}**{more}, gap = no reading for more than "
                       f"{_num(_ms(unit.gap_threshold), 0)} ms:")
            out.append("")
            out.extend(f"- from {display_time(gap.start, report.dateless, 3)} UTC, {gap.seconds:,.2f} s"
                       for gap in unit.top_gaps)
            out.append("")
    if out[-1]:
        out.append("")
    out += ["## Notes", ""] + [f"- {note}" for note in notes(report)]
    if images:
        out += ["", "## Plots", ""]
        for unit, name in images.items():
            out += [f"![{unit}]({name})", ""]
    path.write_text("\n".join(out).rstrip() + "\n")


def _heading(report: Report) -> str:
    options = report.options
    window = ""
    if options.since is not None or options.until is not None:
        since = display_time(options.since, report.dateless) if options.since is not None else "start"
        until = display_time(options.until, report.dateless) if options.until is not None else "end"
        window = f", window {since} to {until} UTC"
    units = f", units {', '.join(sorted(options.units))}" if options.units else ""
    return (f"{report.path} ({report.size / 1e6:,.1f} MB, {len(report.layout.names)} columns): "
            f"{report.rows:,} readings from {len(report.units)} unit(s){window}{units}")


def _filtered(report: Report) -> bool:
    return bool(report.outside_window or report.other_units)


def notes(report: Report) -> list[str]:
    """What the numbers mean and what looks wrong, one sentence each."""
    out = []
    names = report.layout.names
    if "seq" not in names or "session" not in names or "recv_time" not in names:
        out.append("this file has no seq, session or recv_time columns (the first version's layout): "
                   "sessions, missing/duplicate seq and clock offset are n/a")
    if report.dateless:
        out.append("the times in this file have no date (the first version's form): times of day are shown, "
                   "and a clock falling back by more than 12 h counts as the next day")
    out.append(f"mean Hz = rows / span; achieved Hz = 1 / median interval between consecutive readings of a "
               f"session; a gap = no reading for more than {report.options.gap_factor:g} median intervals")
    out.append("clock offset = median of recv_time - time: the Pi's clock error plus network delay (positive: the "
               "Pi's clock is behind the server's, or readings were buffered); max delay includes readings "
               "spooled during outages and sent late, which is expected")
    for unit in report.units:
        out.extend(_unit_notes(unit))
    if report.invalid.total:
        reasons = "; ".join(f"{reason} {count:,} (first at line {report.invalid.first_line[reason]:,})"
                            for reason, count in sorted(report.invalid.counts.items()))
        out.append(f"{report.invalid.total:,} invalid rows skipped: {reasons}")
    else:
        out.append("invalid rows: none")
    if report.outside_window:
        out.append(f"{report.outside_window:,} rows outside the time window skipped")
    if report.other_units:
        out.append(f"{report.other_units:,} rows of other units skipped")
    return out


def _unit_notes(unit: UnitSummary) -> list[str]:
    out = []
    name = unit.unit or "(empty)"
    offset = unit.offset_median_ms
    if offset is not None and offset > OFFSET_WARN_MS:
        out.append(f"{name}: readings reach the server {offset / 1000:,.1f} s after their sample time (median): "
                   "the Pi's clock is behind, or it sends late (check NTP: timedatectl)")
    elif offset is not None and offset < -OFFSET_WARN_MS:
        out.append(f"{name}: readings reach the server {-offset / 1000:,.1f} s before their sample time (median): "
                   "the Pi's clock is ahead (check NTP: timedatectl)")
    if unit.sessions is not None and unit.sessions > 1:
        out.append(f"{name}: {unit.sessions} sessions: the sender was restarted after an unclean stop "
                   "(kill, crash, power cut) or lost its spool state")
    if unit.missing_seq:
        out.append(f"{name}: {unit.missing_seq:,} seq numbers never arrived (readings lost, e.g. dropped from a "
                   "full spool)")
    if unit.duplicate_seq:
        out.append(f"{name}: {unit.duplicate_seq:,} rows repeat a seq already seen in their session")
    if unit.unchecked_seq:
        out.append(f"{name}: {unit.unchecked_seq:,} seqs arrived too far out of order to check; counted as new")
    if unit.out_of_order:
        out.append(f"{name}: time goes backwards {unit.out_of_order:,} times within a session")
    return out

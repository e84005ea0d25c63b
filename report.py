#!/usr/bin/env python3
"""The report: a summary table and plots of the readings in whc_data.csv.

Run it with ``python3 report.py [whc_data.csv]`` (``--help`` for options). It reads the CSV (with its
closed files, or several files, or a PostgreSQL table) twice as a stream, in bounded memory whatever
its size, prints a summary per unit and writes summary.csv,
summary.md and one PNG per unit to ``report/`` beside the CSV. The PNGs need matplotlib
(``pip install -r requirements-report.txt``); everything else needs only the standard library.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from whc import __version__, config
from whc.exc import ConfigError, ReportError
from whc.reporting import plots, tables
from whc.reporting.build import PASSES, Options, Report, build_report
from whc.reporting.files import open_stream
from whc.reporting.pgstream import PostgresStream
from whc.reporting.progress import Progress
from whc.reporting.stream import Stream, parse_window_time

ROOT = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="report.py", description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="*", metavar="CSV",
                        help="the readings: a CSV (with its closed files whc_data-<time>.csv[.gz]), several files or "
                             "globs, or a server.json (its csv, or its PostgreSQL table); default: whc_data.csv here, "
                             "else beside report.py")
    parser.add_argument("--postgres", metavar="DSN", help="read the PostgreSQL sink's table instead (needs psycopg)")
    parser.add_argument("--table", default="whc_readings", metavar="NAME",
                        help="the table for --postgres (default whc_readings)")
    parser.add_argument("--since", metavar="TIME", help="only readings at or after TIME (ISO 8601; no offset = UTC)")
    parser.add_argument("--until", metavar="TIME", help="only readings before TIME (ISO 8601; no offset = UTC)")
    parser.add_argument("--unit", action="append", metavar="SH_ID", help="only this unit (repeatable)")
    parser.add_argument("--out", metavar="DIR",
                        help="where to write the report (default: report/ beside the CSV; here for PostgreSQL)")
    parser.add_argument("--gap-factor", type=float, default=5.0, metavar="N",
                        help="a gap is no reading for more than N median intervals (default 5)")
    parser.add_argument("--no-plots", action="store_true", help="write the summary only, no PNGs")
    parser.add_argument("--version", action="version", version=f"whc report {__version__}")
    return parser.parse_args(argv)


def default_csv() -> Path:
    here = Path("whc_data.csv")
    return here if here.exists() else ROOT / "whc_data.csv"


def open_source(args: argparse.Namespace) -> Stream:
    """What to read: the table of --postgres, what a server.json names, or CSV files; ReportError if unusable."""
    if args.postgres:
        if args.csv:
            raise ReportError("give either --postgres or CSV files, not both")
        return PostgresStream(args.postgres, args.table)
    if len(args.csv) == 1 and args.csv[0].endswith(".json"):
        try:
            settings = config.load(args.csv[0])
            if settings["sink"] == "postgres":
                return PostgresStream(settings.secret("postgres_dsn") or "", settings["postgres_table"])
        except ConfigError as exc:
            raise ReportError(str(exc)) from None
        return open_stream([str(settings.resolve("csv"))])
    return open_stream(args.csv or [str(default_csv())])


def options_from(args: argparse.Namespace, plots_wanted: bool) -> Options:
    """The report options; ValueError with a one-line reason if one is bad."""
    since = parse_window_time(args.since) if args.since else None
    until = parse_window_time(args.until) if args.until else None
    if since is not None and until is not None and until <= since:
        raise ValueError("--until must be later than --since")
    if not args.gap_factor > 1:
        raise ValueError("--gap-factor must be more than 1")
    return Options(since=since, until=until, units=frozenset(args.unit) if args.unit else None,
                   gap_factor=args.gap_factor, plots=plots_wanted)


def image_name(unit: str) -> str:
    """A file name for a unit's PNG (sh_id is already safe; a file from elsewhere may not be)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", unit).lstrip(".") or "unit"


def write_plots(report: Report, out: Path) -> dict[str, str]:
    """One PNG per unit with readings; unit -> file name."""
    images = {}
    for summary in report.units:
        envelope = report.envelopes.get(summary.unit)
        if envelope is not None:
            name = image_name(summary.unit) + ".png"
            plots.plot_unit(summary, envelope, out / name, report.dateless)
            images[summary.unit] = name
    return images


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    no_plots_reason = None if args.no_plots else plots.unavailable()
    try:
        options = options_from(args, plots_wanted=not args.no_plots and no_plots_reason is None)
        stream = open_source(args)
    except (ValueError, ReportError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else stream.path.parent / "report"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"report: {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    report = build_report(stream, options, Progress(stream.size, PASSES))
    images = write_plots(report, out) if options.plots else {}
    tables.write_csv(report, out / "summary.csv")
    tables.write_markdown(report, out / "summary.md", images)
    print(tables.terminal(report))
    written = ["summary.csv", "summary.md", *images.values()]
    print(f"\nwritten to {out}: {', '.join(written)}")
    if no_plots_reason:
        print(no_plots_reason, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

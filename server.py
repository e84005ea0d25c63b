"""The aggregator: accepts readings from the Pis and appends them to whc_data.csv.

Run it with ``python3 launch_server.py`` (``--help`` for options). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys

from whc import __version__, config, logs
from whc.exc import ConfigError
from whc.serving.server import Server
from whc.storage.committer import Committer
from whc.storage.rejects import RejectsLog
from whc.storage.rotation import RotationPolicy
from whc.storage.sinks import Sink
from whc.storage.sinks.csv import CsvSink

log = logging.getLogger("whc.server")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="launch_server.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", metavar="PATH", help="settings file (default: server.json beside the scripts)")
    parser.add_argument("--check-config", action="store_true", help="print the effective settings and exit")
    parser.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="overrides log_level")
    parser.add_argument("--version", action="version", version=f"whc server {__version__}")
    return parser.parse_args(argv)


def open_sink(settings: config.Config, rejects: RejectsLog) -> Sink:
    """The configured sink; the PostgreSQL one (and psycopg) is imported only when chosen."""
    if settings["sink"] == "postgres":
        from whc.storage.sinks.postgres import PostgresSink

        return PostgresSink(settings.secret("postgres_dsn"), settings["postgres_table"])
    policy = RotationPolicy(settings["csv_rotate"], settings["csv_max_bytes"], settings["csv_compress"],
                            settings["csv_keep_days"])
    return CsvSink(settings.resolve("csv"), rejects, policy)


def open_storage(settings: config.Config, on_commit) -> Committer:
    """The committer with the configured sink and the rejects log."""
    rejects = RejectsLog(settings.resolve("rejects"))
    sink = open_sink(settings, rejects)
    log.info("writing readings to %s, rejected lines to %s", sink.describe(), rejects.file.path)
    return Committer(sink, rejects, on_commit)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = config.load(args.config)
    except ConfigError as exc:
        print(f"server: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        print(json.dumps(config.effective(settings, "server"), indent=2))
        return 0
    try:
        logs.setup(args.log_level or settings["log_level"], settings.resolve("log_file"))
        server = Server(settings, lambda on_commit: open_storage(settings, on_commit))
    except ConfigError as exc:
        print(f"server: {settings.path}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"server: {exc.filename or settings.path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    server.install_signal_handlers()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit is a write error (EFBIG), not death
    return server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())

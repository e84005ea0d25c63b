"""What both command lines share: the common options, and how errors end a start.

A ``ConfigError``, a ``SensorError`` (no usable sensor source) or an ``OSError`` on a configured
file ends the start with one line on stderr, ``<side>: <message>``, and exit code 2. Once the
service runs, errors are its own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from . import __version__
from .config import Config
from .exc import ConfigError, SensorError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def parser(side: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the options both sides have: --config, --check-config, --log-level, --version."""
    parser = argparse.ArgumentParser(prog=f"launch_{side}.py", description=description)
    parser.add_argument("--config", metavar="PATH", help="settings file (default: server.json beside the scripts)")
    parser.add_argument("--check-config", action="store_true", help="print the effective settings and exit")
    parser.add_argument("--log-level", choices=LOG_LEVELS, help="overrides log_level")
    parser.add_argument("--version", action="version", version=f"whc {side} {__version__}")
    return parser


def in_file(settings: Config, exc: ConfigError) -> ConfigError:
    """``exc`` naming the config file, which a check made after loading (a port in use) may not know."""
    message = str(exc)
    return exc if message.startswith(str(settings.path)) else ConfigError(f"{settings.path}: {message}")


def run(side: str, start: Callable[[], int | Callable[[], int]]) -> int:
    """Start: call ``start``, which returns an exit code or the function that runs the service.

    A start-up error that escapes ``start`` becomes one line on stderr and exit 2 (a unit file does
    not restart on 2: the fix is the operator's). What the running service raises is not caught
    here: it ends the process with a traceback and exit 1, which systemd restarts.
    """
    try:
        outcome = start()
    except (ConfigError, SensorError) as exc:
        print(f"{side}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{side}: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    return outcome if isinstance(outcome, int) else outcome()

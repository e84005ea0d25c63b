"""Logging set-up shared by the server and the sender: console plus a rotating file."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(level: str, log_file: Path | None) -> None:
    """Log to stderr and, if given, to ``log_file`` (10 MB, 5 kept)."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = logging.Formatter(FORMAT)
    formatter.default_msec_format = "%s.%03d"
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(formatter)
    root.addHandler(console)
    if log_file is not None:
        file = logging.handlers.RotatingFileHandler(log_file, maxBytes=10 * 2**20, backupCount=5, encoding="utf-8")
        file.setFormatter(formatter)
        root.addHandler(file)

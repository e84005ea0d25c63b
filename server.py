"""The aggregator: accepts readings from the Pis and appends them to whc_data.csv.

Run it with ``python3 launch_server.py`` (``--help`` for options). Standard library only.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable

from whc import cli, config, logs
from whc.exc import ConfigError
from whc.serving.server import Server
from whc.storage.committer import open_storage


def main(argv: list[str] | None = None) -> int:
    args = cli.parser("server", __doc__.splitlines()[0]).parse_args(argv)
    return cli.run("server", lambda: start(args))


def start(args) -> int | Callable[[], int]:
    """Load, check and build everything; return an exit code, or the server's loop to run."""
    settings = config.load(args.config)
    if args.check_config:
        print(json.dumps(config.effective(settings, "server"), indent=2))
        return 0
    logs.setup(args.log_level or settings["log_level"], settings.resolve("log_file"))
    try:
        server = Server(settings, lambda on_commit: open_storage(settings, on_commit))
    except ConfigError as exc:
        raise cli.in_file(settings, exc) from None
    server.install_signal_handlers()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit is a write error (EFBIG), not death
    return server.serve_forever


if __name__ == "__main__":
    sys.exit(main())

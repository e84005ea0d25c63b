"""The sender: reads the Sense HAT on a Pi and streams the readings to the server.

Run it with ``python3 launch_sender.py`` (``--help`` for options). Readings are numbered,
buffered in memory and spooled to disk while the server is away, and leave the Pi only
once the server has acknowledged them.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable
from contextlib import ExitStack

from whc import cli, config, logs
from whc.buffering.spoolcheck import describe_spool
from whc.exc import ConfigError
from whc.protocol import valid_id
from whc.sampling.backends import SensorOptions, open_backend
from whc.sampling.hatlock import lock_hat
from whc.sampling.sampler import Sampler
from whc.sender import Sender


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("sender", __doc__.splitlines()[0])
    parser.add_argument("--emulator", action="store_true", help="read the Sense HAT emulator (sense-emu), not a HAT")
    parser.add_argument("--once", action="store_true", help="print one reading as a JSON line and exit")
    parser.add_argument("--check-spool", action="store_true",
                        help="print what the spool holds, change nothing; exit 0 if clean, 1 if damaged")
    args = parser.parse_args(argv)
    return cli.run("sender", lambda: start(args))


def unit_name(settings: config.Config) -> str:
    """The configured unit, or the hostname."""
    unit = settings["unit"] or socket.gethostname().split(".")[0]
    if not valid_id(unit):
        raise ConfigError(f"{settings.path}: hostname {unit!r} cannot be a sh_id; set key 'unit'")
    return unit


def start(args) -> int | Callable[[], int]:
    """Load, check and open everything; return an exit code, or the sender's run to call."""
    settings = config.load(args.config)
    unit = unit_name(settings)
    backend_name = "emulator" if args.emulator else settings["backend"]
    if args.check_config:
        print(json.dumps(config.effective(settings, "sender", unit=unit, backend=backend_name), indent=2))
        return 0
    if args.check_spool:
        text, damaged = describe_spool(settings.resolve("spool_dir"))
        print(text)
        return 1 if damaged else 0
    logs.setup(args.log_level or settings["log_level"], None)
    held = ExitStack()  # the HAT (lock, then back end), held until the sender stops
    try:
        held.enter_context(lock_hat(backend_name, settings.resolve("spool_dir")))
        backend = held.enter_context(open_backend(backend_name, settings["sensors"],
                                                  SensorOptions.from_settings(settings)))
        if args.once:
            print(json.dumps(Sampler(backend, unit, 0, lambda _: None).sample()))
            held.close()
            return 0
        sender = Sender(settings, unit, backend)
        sender.install_signal_handlers()
    except BaseException:
        held.close()
        raise

    def run() -> int:
        with held:
            return sender.run()

    return run


if __name__ == "__main__":
    sys.exit(main())

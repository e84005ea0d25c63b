"""The sender: reads the Sense HAT on a Pi and streams the readings to the server.

Run it with ``python3 launch_sender.py`` (``--help`` for options). Readings are numbered,
buffered in memory and spooled to disk while the server is away, and leave the Pi only
once the server has acknowledged them.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import threading
import time

from whc import __version__, config, logs, protocol
from whc.buffering.buffer import Buffer
from whc.buffering.forwarder import Forwarder
from whc.exc import ConfigError, SensorError
from whc.monitoring.health import HealthReport
from whc.protocol import valid_id
from whc.sampling.backends import open_backend
from whc.sampling.led import StatusDisplay
from whc.sampling.sampler import Sampler
from whc.tls import client_context

log = logging.getLogger("whc.sender")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="launch_sender.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", metavar="PATH", help="settings file (default: server.json beside the scripts)")
    parser.add_argument("--emulator", action="store_true", help="read the Sense HAT emulator (sense-emu), not a HAT")
    parser.add_argument("--once", action="store_true", help="print one reading as a JSON line and exit")
    parser.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="overrides log_level")
    parser.add_argument("--check-config", action="store_true", help="print the effective settings and exit")
    parser.add_argument("--version", action="version", version=f"whc sender {__version__}")
    return parser.parse_args(argv)


def unit_name(settings: config.Config) -> str:
    """The configured unit, or the hostname."""
    unit = settings["unit"] or socket.gethostname().split(".")[0]
    if not valid_id(unit):
        raise ConfigError(f"{settings.path}: hostname {unit!r} cannot be a sh_id; set key 'unit'")
    return unit


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = config.load(args.config)
        unit = unit_name(settings)
    except ConfigError as exc:
        print(f"sender: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        print(json.dumps(config.effective(settings, "sender"), indent=2))
        return 0
    logs.setup(args.log_level or settings["log_level"], None)
    backend_name = "emulator" if args.emulator else settings["backend"]
    try:
        backend = open_backend(backend_name, settings["sensors"])
    except (SensorError, ConfigError) as exc:
        print(f"sender: {exc}", file=sys.stderr)
        return 2
    try:
        if args.once:
            reading = Sampler(backend, unit, 0, lambda _: None).sample()
            print(json.dumps(reading))
            return 0
        return run(settings, unit, backend)
    except ConfigError as exc:
        print(f"sender: {exc}", file=sys.stderr)
        return 2
    finally:
        backend.close()


def run(settings: config.Config, unit: str, backend) -> int:
    """Sample, buffer and forward until SIGTERM/SIGINT; 0 on a clean stop."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    display = StatusDisplay(backend.sense, unit, enabled=settings["led"], low_light=settings["led_low_light"])
    buffer = Buffer(settings.resolve("spool_dir"), settings["spool_max_bytes"], settings["memory_readings"],
                    settings["fsync_interval"])
    servers = list(settings["servers"] or [(settings["ip"], settings["port"])])
    tls = (client_context(settings.resolve("tls_ca_file"),
                          settings.resolve("tls_client_cert_file") if settings["tls_client_cert_file"] else None,
                          settings.resolve("tls_client_key_file") if settings["tls_client_key_file"] else None)
           if settings["tls_ca_file"] else None)
    hello = protocol.encode_hello(acks=True, sh_id=unit, token=settings.secret("token"), status=True)
    sampler = Sampler(backend, unit, settings["interval"], buffer.add)
    health = HealthReport(unit, buffer, sampler, backend)
    forwarder = Forwarder(buffer, servers, settings["max_in_flight"], settings["ack_timeout"], hello, tls,
                          settings["tls_server_name"], health.line, settings["stats_interval"])
    log.info("sender %s: %s, sensors %s, interval %g s, to %s, session %s", unit, backend.name,
             ",".join(settings["sensors"]), settings["interval"],
             ", ".join(f"{host} port {port}" for host, port in servers), buffer.session)
    forwarder.start()
    sampler.start()
    code = 0
    stats_every = settings["stats_interval"]
    next_stats = time.monotonic() + stats_every
    last_count, last_time = 0, time.monotonic()
    while not stop.wait(settings["fsync_interval"]):
        buffer.flush(spill_all=not forwarder.connected)
        healthy = forwarder.connected and not buffer.spool.segments
        display.set_ok() if healthy else display.set_trouble()
        if sampler.failure is not None or not sampler.is_alive() or not forwarder.is_alive():
            log.error("stopping: %s", f"sampling failed: {sampler.failure}" if forwarder.is_alive()
                      else "the forwarder thread ended")
            display.show_fatal()
            code = 1
            break
        now = time.monotonic()
        if now >= next_stats:
            rate = (sampler.count - last_count) / (now - last_time)
            last_count, last_time, next_stats = sampler.count, now, now + stats_every
            log.info("stats: readings/s=%.1f read=%d acked_backlog=%d spooled_bytes=%d dropped=%d imu_failures=%d "
                     "refused=%d connected=%s", rate, sampler.count, buffer.backlog, buffer.spool.size,
                     buffer.dropped, backend.imu_failures, forwarder.rejected, forwarder.connected)
    log.info("stopping: spooling %d unacknowledged readings", buffer.backlog)
    sampler.stop()
    forwarder.stop()
    buffer.close()
    if code == 0:
        display.close()
    log.info("stopped; %d readings this run, %d waiting in %s", sampler.count, buffer.backlog, buffer.folder)
    return code


if __name__ == "__main__":
    sys.exit(main())

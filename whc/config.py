"""server.json: one file, read by both the server and the senders.

Every key is declared once in ``KEYS`` with its default and meaning; the README's
reference tables follow this list. ``load`` validates everything up front and raises
``ConfigError`` with the file, the key and the fix.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .columns import DEFAULT_SENSOR_GROUPS, SENSOR_GROUPS
from .exc import ConfigError
from .protocol import ID_RULE, valid_id

HERE = Path(__file__).resolve().parent.parent
DEFAULT_PATH = HERE / "server.json"


@dataclass(frozen=True)
class Key:
    """One config key."""

    name: str
    default: Any
    meaning: str
    check: Callable[[Any], Any]  # returns the normalised value or raises ValueError with the fix
    side: str  # "both", "server" or "sender"
    required: bool = False


def _int(low: int, high: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if type(value) is not int or value < low or (high is not None and value > high):
            bound = f"{low}-{high}" if high is not None else f">= {low}"
            raise ValueError(f"must be an integer {bound}")
        return value

    return check


def _number(low: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if type(value) not in (int, float) or not math.isfinite(value) or value < low:
            raise ValueError(f"must be a finite number >= {low} (NaN and Infinity are not numbers here)")
        return float(value)

    return check


def _gain(value: Any) -> int:
    if type(value) is not int or value not in (1, 4, 16, 60, 64):
        raise ValueError("must be one of 1, 4, 16, 60, 64")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def _choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError("must be one of " + ", ".join(repr(o) for o in options))
        return value

    return check


def _networks(value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError('must be a list of addresses or CIDR networks, e.g. ["192.168.1.0/24", "::1"]')
    networks = []
    for text in value:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IPv4/IPv6 address or CIDR network (e.g. 10.0.0.0/24)") from None
    return tuple(networks)


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError("must be true or false")
    return value


def _unit(value: Any) -> str:
    if not valid_id(value):
        raise ValueError(f"must be {ID_RULE}")
    return value


def _groups(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be a non-empty list of sensor groups from {', '.join(SENSOR_GROUPS)}")
    for group in value:
        if group not in SENSOR_GROUPS:
            near = difflib.get_close_matches(group, SENSOR_GROUPS, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"choose from {', '.join(SENSOR_GROUPS)}"
            raise ValueError(f"has an unknown group {group!r} ({hint})")
    return tuple(dict.fromkeys(value))


def _identifier(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
        raise ValueError("must be a lower-case SQL name: a-z, 0-9, _ (not starting with a digit)")
    return value


def _servers(value: Any) -> tuple[tuple[str, int], ...]:
    example = '[{"ip": "192.168.1.10", "port": 5000}, {"ip": "192.168.1.11", "port": 5000}]'
    if not isinstance(value, list) or not value:
        raise ValueError(f"must be a non-empty list like {example}")
    servers = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"ip", "port"}:
            raise ValueError(f"entries must be objects with exactly ip and port, like {example}")
        servers.append((_str(entry["ip"]), _int(1, 65535)(entry["port"])))
    return tuple(servers)


def _size_limit(value: Any) -> int:
    if type(value) is not int or not (value == 0 or value >= 4096):
        raise ValueError("must be 0 (no limit) or an integer >= 4096 (bytes)")
    return value


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

KEYS: tuple[Key, ...] = (
    Key("ip", None, "Server address: the server binds to it, senders connect to it.", _str, "both", True),
    Key("port", None, "Server TCP port.", _int(1, 65535), "both", True),
    Key("allowed_ips", ["127.0.0.0/8", "::1"],
        "Addresses and CIDR networks allowed to connect; others are closed before any byte is read.",
        _networks, "server"),
    Key("csv", "whc_data.csv", "Path of the CSV the server appends readings to.", _str, "server"),
    Key("rejects", None, "Path of the rejected-lines log (JSON Lines); default: the CSV's name + .rejects.jsonl.",
        _str, "server"),
    Key("log_file", "server.log", "Server log file, rotated at 10 MB, 5 kept.", _str, "server"),
    Key("log_level", "INFO", "DEBUG, INFO, WARNING or ERROR.", _choice(*_LEVELS), "both"),
    Key("max_line_bytes", 65536, "Longest accepted line; a longer one is rejected and its connection closed.",
        _int(256, 16 * 2**20), "server"),
    Key("max_connections", 1024, "Connections served at once; more are closed at accept.", _int(1), "server"),
    Key("max_connections_per_ip", None, "Connections served at once from one address; default: max_connections "
        "(lower it only when no NAT or proxy puts many clients behind one address).", _int(1), "server"),
    Key("idle_timeout", 900, "Seconds without a byte from a client before its connection is closed.",
        _number(1), "server"),
    Key("max_pending_bytes", 16 * 2**20,
        "Received bytes not yet on disk, over all clients, before the server stops reading (backpressure).",
        _int(2**16), "server"),
    Key("stats_interval", 60, "Seconds between stats lines in the log (and a sender's status lines).", _number(0.1),
        "both"),
    Key("token", None, "Shared secret every client must send in its hello (constant-time compare, never logged).",
        _str, "both"),
    Key("token_file", None, "A file holding the token instead (keep it 0600).", _str, "both"),
    Key("tls_cert_file", None, "Server certificate (PEM); with tls_key_file the server speaks TLS only.", _str,
        "server"),
    Key("tls_key_file", None, "Server private key (PEM).", _str, "server"),
    Key("tls_client_ca_file", None, "CA that signs client certificates; set: clients must present one (mutual TLS).",
        _str, "server"),
    Key("tls_match_sh_id", False, "With mutual TLS: every reading's sh_id must equal the client certificate's common "
        "name or a DNS name in it.", _bool, "server"),
    # --- CSV rotation, compression and expiry (issue 12) ---
    Key("csv_rotate", "none", 'none: one CSV that grows; "hourly" or "daily": a new file on each UTC hour or day.',
        _choice("none", "hourly", "daily"), "server"),
    Key("csv_max_bytes", 0, "0: no size limit; otherwise a new file before the CSV would pass this size "
        "(at least 4096).", _size_limit, "server"),
    Key("csv_compress", False, "Gzip closed CSV files in the background (never on the ingest path).", _bool,
        "server"),
    Key("csv_keep_days", 0, "0: keep every closed CSV file; otherwise delete closed files older than this.",
        _number(0), "server"),
    Key("sink", "csv", "Where readings go: csv (the default) or postgres.", _choice("csv", "postgres"), "server"),
    Key("postgres_dsn", None, "PostgreSQL connection string (libpq form), for sink postgres.", _str, "server"),
    Key("postgres_dsn_file", None, "File holding the connection string instead (keeps the password out of "
        "server.json).", _str, "server"),
    Key("postgres_table", "whc_readings", "Table the postgres sink writes (created on first start).",
        _identifier, "server"),
    # --- ingest speed (issue 14) ---
    Key("parser", "auto", "Line parser: auto (msgspec if installed, else stdlib), stdlib or msgspec; all give the "
        "same rows and rejects.", _choice("auto", "stdlib", "msgspec"), "server"),
    # --- watching the fleet (issue 11) ---
    Key("http_port", None, "Port of the HTTP status endpoints (/, /status.json, /metrics); default: none (off).",
        _int(1, 65535), "server"),
    Key("http_ip", "127.0.0.1", "Address the HTTP endpoints listen on; allowed_ips applies to them too.", _str,
        "server"),
    Key("silent_after", 30, "Seconds without a new reading before a unit that delivered is logged as silent.",
        _number(1), "server"),
    # --- the sender (on each Pi) ---
    Key("unit", None, "This Pi's name, sent as sh_id (default: the hostname).", _unit, "sender"),
    Key("servers", None, 'Servers to fail over between, in order: [{"ip": ..., "port": ...}, ...]; default: '
        "the one ip and port.", _servers, "sender"),
    Key("interval", 0, "Seconds between readings; 0: one per new IMU sample (as fast as the sensors allow).",
        _number(0), "sender"),
    Key("backend", "sense_hat", "Sensor source: sense_hat (the HAT) or emulator (sense-emu, no Pi needed).",
        _choice("sense_hat", "emulator"), "sender"),
    Key("sensors", list(DEFAULT_SENSOR_GROUPS), "Sensor groups to read: " + ", ".join(SENSOR_GROUPS) + ".",
        _groups, "sender"),
    Key("spool_dir", "spool", "Folder of the on-disk buffer of unacknowledged readings.", _str, "sender"),
    Key("spool_max_bytes", 512 * 2**20, "Spool size limit; when full the oldest readings are dropped and counted.",
        _int(2**16), "sender"),
    Key("memory_readings", 20000, "Readings kept in memory before they spill to the spool.", _int(1), "sender"),
    Key("fsync_interval", 1.0, "Seconds between spool writes; a power cut loses at most this much.",
        _number(0.01), "sender"),
    Key("max_in_flight", 5000, "Readings sent but not yet acknowledged, at most.", _int(1), "sender"),
    Key("ack_timeout", 10.0, "Seconds without an ack (with readings waiting) before the server counts as gone.",
        _number(0.1), "sender"),
    Key("tls_ca_file", None, "CA that signed the server's certificate; set: the sender speaks TLS and verifies the "
        "server.", _str, "sender"),
    Key("tls_client_cert_file", None, "This Pi's certificate (PEM), for servers that require one.", _str, "sender"),
    Key("tls_client_key_file", None, "This Pi's private key (PEM).", _str, "sender"),
    Key("tls_server_name", None, "Name to verify in the server's certificate; default: the ip of the server.", _str,
        "sender"),
    Key("led", True, "Use the LED matrix: unit number at start, status pixel, red X on a fatal error.", _bool,
        "sender"),
    Key("led_low_light", False, "Dim the LED matrix.", _bool, "sender"),
    # --- the colour sensor (v2 Sense HAT), issue 16 ---
    Key("colour_gain", 16, "Colour sensor gain: 1, 4, 16 or 60 (64 on a TCS3400; both mean its top gain). "
        "Lower it if col_c often reaches the maximum count, raise it if col_c stays below about 1000.",
        _gain, "sender"),
    Key("colour_integration_cycles", 64, "Colour sensor integration time in 2.4 ms cycles, 1-256; counts reach "
        "at most 1024 per cycle (65535 from 64 cycles), and col_* change once per integration.", _int(1, 256),
        "sender"),
)

_BY_NAME = {k.name: k for k in KEYS}
_SECRETS = frozenset({"token", "postgres_dsn"})


class Config(dict[str, Any]):
    """Validated settings, with defaults filled in; ``path`` is the file they came from."""

    path: Path

    def resolve(self, key: str) -> Path:
        """A path setting, relative to the config file's folder."""
        return (self.path.parent / self[key]).resolve()

    def secret(self, key: str) -> str | None:
        """A secret given inline (``key``) or in a file (``key``_file), stripped; ConfigError if unreadable."""
        if self.get(key):
            return self[key]
        if not self.get(key + "_file"):
            return None
        path = self.resolve(key + "_file")
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{self.path}: key '{key}_file': cannot read {path}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"{self.path}: key '{key}_file': {path} is empty")
        return value


def load(path: str | Path | None = None) -> Config:
    """Read and validate a config file; raise ConfigError naming file, key and fix."""
    file = Path(path) if path is not None else DEFAULT_PATH
    name = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: file not found; create it (see README) or pass --config PATH") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read: {exc}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f'{name}: must hold a JSON object, e.g. {{"ip": "127.0.0.1", "port": 5000}}')
    return from_dict(raw, file)


def from_dict(raw: dict[str, Any], file: Path) -> Config:
    """Validate a dict as if it came from ``file``."""
    name = str(file)
    config = Config()
    config.path = file.resolve()
    for key in raw:
        if key not in _BY_NAME:
            near = difflib.get_close_matches(key, list(_BY_NAME), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else " (see the README for the keys)"
            raise ConfigError(f"{name}: unknown key {key!r}{hint}")
    for key in KEYS:
        if key.name not in raw:
            if key.required:
                raise ConfigError(f"{name}: key {key.name!r} is missing; add it, e.g. {_example(key.name)}")
            config[key.name] = key.check(key.default) if key.default is not None else None
            continue
        try:
            config[key.name] = key.check(raw[key.name])
        except ValueError as exc:
            raise ConfigError(f"{name}: key {key.name!r} {exc} (got {json.dumps(raw[key.name])})") from None
    pairs = [("token", "token_file"), ("postgres_dsn", "postgres_dsn_file")]
    for one, other in pairs:
        if config.get(one) and config.get(other):
            raise ConfigError(f"{name}: keys {one!r} and {other!r} are both set; keep one")
    together = [("tls_cert_file", "tls_key_file"), ("tls_client_cert_file", "tls_client_key_file")]
    for needs, key in together + [(b, a) for a, b in together]:
        if config.get(key) and not config.get(needs):
            raise ConfigError(f"{name}: key {key!r} needs {needs!r} too")
    if config.get("tls_client_ca_file") and not config.get("tls_cert_file"):
        raise ConfigError(f"{name}: key 'tls_client_ca_file' needs 'tls_cert_file' and 'tls_key_file' (TLS on)")
    if config.get("tls_match_sh_id") and not config.get("tls_client_ca_file"):
        raise ConfigError(f"{name}: key 'tls_match_sh_id' needs 'tls_client_ca_file' (client certificates)")
    if config.get("tls_client_cert_file") and not config.get("tls_ca_file"):
        raise ConfigError(f"{name}: key 'tls_client_cert_file' needs 'tls_ca_file' (TLS on)")
    if config["sink"] == "postgres" and not (config["postgres_dsn"] or config["postgres_dsn_file"]):
        raise ConfigError(f"{name}: sink 'postgres' needs key 'postgres_dsn' or 'postgres_dsn_file'")
    if config.get("max_connections_per_ip") is None and "max_connections" in config:
        config["max_connections_per_ip"] = config["max_connections"]  # one NAT address may hide a whole fleet
    if config.get("rejects") is None and "csv" in config:
        csv_path = Path(config["csv"])
        config["rejects"] = str(csv_path.with_name(csv_path.stem + ".rejects.jsonl"))
    return config


def effective(config: Config, side: str, **decided: Any) -> dict[str, Any]:
    """The settings one side runs with, JSON-ready (for --check-config): paths resolved, secrets
    hidden, and what the command line or the machine ``decided`` (the sender's backend, its unit)."""
    out: dict[str, Any] = {}
    for key in KEYS:
        if key.side in (side, "both"):
            value = decided.get(key.name, config.get(key.name))
            if key.name in _SECRETS and value:
                value = "<hidden>"
            elif value and _is_path(key.name):
                value = str(config.resolve(key.name))
            elif key.name == "servers" and value:
                value = [{"ip": ip, "port": port} for ip, port in value]
            elif isinstance(value, tuple):
                value = [str(v) for v in value]
            out[key.name] = value
    return out


def _is_path(key: str) -> bool:
    return key.endswith(("_file", "_dir")) or key in ("csv", "rejects")


def _example(key: str) -> str:
    return {"ip": '"ip": "127.0.0.1"', "port": '"port": 5000'}.get(key, f'"{key}": ...')

"""Every server.json key, once: its default, its check, which side reads it, and what it means.

The README's configuration tables follow this list (a test keeps them in step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..columns import DEFAULT_SENSOR_GROUPS, SENSOR_GROUPS
from .checks import (
    boolean,
    choice,
    gain,
    integer,
    networks,
    number,
    sensor_groups,
    servers,
    size_limit,
    sql_name,
    text,
    unit_name,
)


@dataclass(frozen=True)
class Key:
    """One config key."""

    name: str
    default: Any
    meaning: str
    check: Callable[[Any], Any]  # returns the normalised value or raises ValueError with the fix
    side: str  # "both", "server" or "sender"
    required: bool = False


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

KEYS: tuple[Key, ...] = (
    Key("ip", None, "Server address: the server binds to it, senders connect to it.", text, "both", True),
    Key("port", None, "Server TCP port.", integer(1, 65535), "both", True),
    Key("allowed_ips", ["127.0.0.0/8", "::1"],
        "Addresses and CIDR networks allowed to connect; others are closed before any byte is read.",
        networks, "server"),
    Key("csv", "whc_data.csv", "Path of the CSV the server appends readings to.", text, "server"),
    Key("rejects", None, "Path of the rejected-lines log (JSON Lines); default: the CSV's name + .rejects.jsonl.",
        text, "server"),
    Key("log_file", "server.log", "Server log file, rotated at 10 MB, 5 kept.", text, "server"),
    Key("log_level", "INFO", "DEBUG, INFO, WARNING or ERROR.", choice(*_LEVELS), "both"),
    Key("max_line_bytes", 65536, "Longest accepted line; a longer one is rejected and its connection closed.",
        integer(256, 16 * 2**20), "server"),
    Key("max_connections", 1024, "Connections served at once; more are closed at accept.", integer(1), "server"),
    Key("max_connections_per_ip", None, "Connections served at once from one address; default: max_connections "
        "(lower it only when no NAT or proxy puts many clients behind one address).", integer(1), "server"),
    Key("idle_timeout", 900, "Seconds without a byte from a client before its connection is closed.",
        number(1), "server"),
    Key("max_pending_bytes", 16 * 2**20,
        "Received bytes not yet on disk, over all clients, before the server stops reading (backpressure).",
        integer(2**16), "server"),
    Key("stats_interval", 60, "Seconds between stats lines in the log (and a sender's status lines).", number(0.1),
        "both"),
    Key("token", None, "Shared secret every client must send in its hello (constant-time compare, never logged).",
        text, "both"),
    Key("token_file", None, "A file holding the token instead (keep it 0600).", text, "both"),
    Key("tls_cert_file", None, "Server certificate (PEM); with tls_key_file the server speaks TLS only.", text,
        "server"),
    Key("tls_key_file", None, "Server private key (PEM).", text, "server"),
    Key("tls_client_ca_file", None, "CA that signs client certificates; set: clients must present one (mutual TLS).",
        text, "server"),
    Key("tls_match_sh_id", False, "With mutual TLS: every reading's sh_id must equal the client certificate's common "
        "name or a DNS name in it.", boolean, "server"),
    # --- CSV rotation, compression and expiry (issue 12) ---
    Key("csv_rotate", "none", 'none: one CSV that grows; "hourly" or "daily": a new file on each UTC hour or day.',
        choice("none", "hourly", "daily"), "server"),
    Key("csv_max_bytes", 0, "0: no size limit; otherwise a new file before the CSV would pass this size "
        "(at least 4096).", size_limit, "server"),
    Key("csv_compress", False, "Gzip closed CSV files in the background (never on the ingest path).", boolean,
        "server"),
    Key("csv_keep_days", 0, "0: keep every closed CSV file; otherwise delete closed files older than this.",
        number(0), "server"),
    Key("sink", "csv", "Where readings go: csv (the default) or postgres.", choice("csv", "postgres"), "server"),
    Key("postgres_dsn", None, "PostgreSQL connection string (libpq form), for sink postgres.", text, "server"),
    Key("postgres_dsn_file", None, "File holding the connection string instead (keeps the password out of "
        "server.json).", text, "server"),
    Key("postgres_table", "whc_readings", "Table the postgres sink writes (created on first start).",
        sql_name, "server"),
    # --- ingest speed (issue 14) ---
    Key("parser", "auto", "Line parser: auto (msgspec if installed, else stdlib), stdlib or msgspec; all give the "
        "same rows and rejects.", choice("auto", "stdlib", "msgspec"), "server"),
    # --- watching the fleet (issue 11) ---
    Key("http_port", None, "Port of the HTTP status endpoints (/, /status.json, /metrics); default: none (off).",
        integer(1, 65535), "server"),
    Key("http_ip", "127.0.0.1", "Address the HTTP endpoints listen on; allowed_ips applies to them too.", text,
        "server"),
    Key("silent_after", 30, "Seconds without a new reading before a unit that delivered is logged as silent.",
        number(1), "server"),
    # --- the sender (on each Pi) ---
    Key("unit", None, "This Pi's name, sent as sh_id (default: the hostname).", unit_name, "sender"),
    Key("servers", None, 'Servers to fail over between, in order: [{"ip": ..., "port": ...}, ...]; default: '
        "the one ip and port.", servers, "sender"),
    Key("interval", 0, "Seconds between readings; 0: one per new IMU sample (as fast as the sensors allow).",
        number(0), "sender"),
    Key("backend", "sense_hat", "Sensor source: sense_hat (the HAT) or emulator (sense-emu, no Pi needed).",
        choice("sense_hat", "emulator"), "sender"),
    Key("sensors", list(DEFAULT_SENSOR_GROUPS), "Sensor groups to read: " + ", ".join(SENSOR_GROUPS) + ".",
        sensor_groups, "sender"),
    Key("spool_dir", "spool", "Folder of the on-disk buffer of unacknowledged readings.", text, "sender"),
    Key("spool_max_bytes", 512 * 2**20, "Spool size limit; when full the oldest readings are dropped and counted.",
        integer(2**16), "sender"),
    Key("memory_readings", 20000, "Readings kept in memory before they spill to the spool.", integer(1), "sender"),
    Key("fsync_interval", 1.0, "Seconds between spool writes; a power cut loses at most this much.",
        number(0.01), "sender"),
    Key("max_in_flight", 5000, "Readings sent but not yet acknowledged, at most.", integer(1), "sender"),
    Key("ack_timeout", 10.0, "Seconds without an ack (with readings waiting) before the server counts as gone.",
        number(0.1), "sender"),
    Key("tls_ca_file", None, "CA that signed the server's certificate; set: the sender speaks TLS and verifies the "
        "server.", text, "sender"),
    Key("tls_client_cert_file", None, "This Pi's certificate (PEM), for servers that require one.", text, "sender"),
    Key("tls_client_key_file", None, "This Pi's private key (PEM).", text, "sender"),
    Key("tls_server_name", None, "Name to verify in the server's certificate; default: the ip of the server.", text,
        "sender"),
    Key("led", True, "Use the LED matrix: unit number at start, status pixel, red X on a fatal error.", boolean,
        "sender"),
    Key("led_low_light", False, "Dim the LED matrix.", boolean, "sender"),
    # --- the colour sensor (v2 Sense HAT), issue 16 ---
    Key("colour_gain", 16, "Colour sensor gain: 1, 4, 16 or 60 (64 on a TCS3400; both mean its top gain). "
        "Lower it if col_c often reaches the maximum count, raise it if col_c stays below about 1000.",
        gain, "sender"),
    Key("colour_integration_cycles", 64, "Colour sensor integration time in 2.4 ms cycles, 1-256; counts reach "
        "at most 1024 per cycle (65535 from 64 cycles), and col_* change once per integration.", integer(1, 256),
        "sender"),
)

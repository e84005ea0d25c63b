"""server.json: one file, read by both the server and the senders.

Every key is declared once in ``keys.KEYS`` with its default and meaning (its check in ``checks``);
``load`` validates everything up front and raises ``ConfigError`` with the file, the key and the fix.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from ..exc import ConfigError
from .keys import KEYS, Key

__all__ = ["KEYS", "Config", "ConfigError", "Key", "effective", "from_dict", "load"]

HERE = Path(__file__).resolve().parent.parent.parent
DEFAULT_PATH = HERE / "server.json"


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

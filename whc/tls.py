"""TLS contexts: the server's (optionally requiring client certificates) and the sender's."""

from __future__ import annotations

import ssl
from pathlib import Path

from .exc import ConfigError


def server_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    """TLS 1.2+ server context; with ``client_ca`` every client must present a certificate it signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, cert, key, "tls_cert_file", "tls_key_file")
    if client_ca is not None:
        _load_ca(context, client_ca, "tls_client_ca_file")
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(ca: Path, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    """TLS 1.2+ client context that verifies the server against ``ca`` (and its name)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_ca(context, ca, "tls_ca_file")
    if cert is not None and key is not None:
        _load_chain(context, cert, key, "tls_client_cert_file", "tls_client_key_file")
    return context


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path, cert_key: str, key_key: str) -> None:
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        which = cert_key if Path(exc.filename or "") == cert else key_key
        raise ConfigError(f"key {which!r}: {exc.filename}: file not found") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"keys {cert_key!r}/{key_key!r}: cannot load {cert} with {key}: {exc}") from None


def _load_ca(context: ssl.SSLContext, ca: Path, key: str) -> None:
    try:
        context.load_verify_locations(cafile=ca)
    except FileNotFoundError:
        raise ConfigError(f"key {key!r}: {ca}: file not found") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"key {key!r}: cannot load {ca}: {exc}") from None

"""Who a client is: the shared token and the names in its TLS client certificate; the token kept out of records."""

from __future__ import annotations

import hmac
from typing import Any


def token_matches(expected: bytes, given: str | None) -> bool:
    """Constant-time comparison of the configured token with the one a client sent."""
    return given is not None and hmac.compare_digest(expected, given.encode("utf-8"))


def certificate_names(cert: dict[str, Any] | None) -> frozenset[str]:
    """The common name(s) and DNS subject-alternative names of a peer certificate (``getpeercert()``)."""
    if not cert:
        return frozenset()
    names = {value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"}
    names.update(value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS")
    return frozenset(names)


REDACTED = b"<token>"


def redact(raw: bytes, token: bytes) -> bytes:
    """``raw`` with the token, and a token cut short at its end (a line cut at the limit), blanked out."""
    if token in raw:
        raw = raw.replace(token, REDACTED)
    for keep in range(min(len(token) - 1, len(raw)), 3, -1):
        if raw.endswith(token[:keep]):
            return raw[:-keep] + REDACTED
    return raw

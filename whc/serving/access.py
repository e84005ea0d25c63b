"""Who a client is: the shared token and the names in its TLS client certificate."""

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

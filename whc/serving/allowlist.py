"""Who may connect: an IP allowlist of addresses and CIDR networks."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def normalise_ip(host: str) -> str:
    """Source address as text, with IPv4-mapped IPv6 (``::ffff:1.2.3.4``) turned back into IPv4."""
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


class Allowlist:
    """Answers whether an address may connect."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)
        self._cache: dict[str, bool] = {}

    def allows(self, ip: str) -> bool:
        allowed = self._cache.get(ip)
        if allowed is None:
            address = ipaddress.ip_address(ip)
            allowed = any(address in net for net in self.networks if net.version == address.version)
            if len(self._cache) > 65536:
                self._cache.clear()
            self._cache[ip] = allowed
        return allowed

"""The checks of config values: each returns the value normalised or raises ValueError with the fix."""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Callable
from typing import Any

from ..columns import SENSOR_GROUPS
from ..protocol import ID_RULE, valid_id


def integer(low: int, high: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if type(value) is not int or value < low or (high is not None and value > high):
            bound = f"{low}-{high}" if high is not None else f">= {low}"
            raise ValueError(f"must be an integer {bound}")
        return value

    return check


def number(low: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if type(value) not in (int, float) or not math.isfinite(value) or value < low:
            raise ValueError(f"must be a finite number >= {low} (NaN and Infinity are not numbers here)")
        return float(value)

    return check


def gain(value: Any) -> int:
    if type(value) is not int or value not in (1, 4, 16, 60, 64):
        raise ValueError("must be one of 1, 4, 16, 60, 64")
    return value


def text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError("must be one of " + ", ".join(repr(o) for o in options))
        return value

    return check


def networks(value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError('must be a list of addresses or CIDR networks, e.g. ["192.168.1.0/24", "::1"]')
    networks = []
    for text in value:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IPv4/IPv6 address or CIDR network (e.g. 10.0.0.0/24)") from None
    return tuple(networks)


def boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError("must be true or false")
    return value


def unit_name(value: Any) -> str:
    if not valid_id(value):
        raise ValueError(f"must be {ID_RULE}")
    return value


def sensor_groups(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be a non-empty list of sensor groups from {', '.join(SENSOR_GROUPS)}")
    for group in value:
        if group not in SENSOR_GROUPS:
            near = difflib.get_close_matches(group, SENSOR_GROUPS, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"choose from {', '.join(SENSOR_GROUPS)}"
            raise ValueError(f"has an unknown group {group!r} ({hint})")
    return tuple(dict.fromkeys(value))


def sql_name(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
        raise ValueError("must be a lower-case SQL name: a-z, 0-9, _ (not starting with a digit)")
    return value


def servers(value: Any) -> tuple[tuple[str, int], ...]:
    example = '[{"ip": "192.168.1.10", "port": 5000}, {"ip": "192.168.1.11", "port": 5000}]'
    if not isinstance(value, list) or not value:
        raise ValueError(f"must be a non-empty list like {example}")
    servers = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"ip", "port"}:
            raise ValueError(f"entries must be objects with exactly ip and port, like {example}")
        servers.append((text(entry["ip"]), integer(1, 65535)(entry["port"])))
    return tuple(servers)


def size_limit(value: Any) -> int:
    if type(value) is not int or not (value == 0 or value >= 4096):
        raise ValueError("must be 0 (no limit) or an integer >= 4096 (bytes)")
    return value

"""Network namespaces joined by veth links, and link faults on them (needs root).

A kernel may come without netem (and without the gact action), so the faults are made of parts a
minimal kernel has, all applied per link end on packets arriving there (the ingress qdisc):
- loss (25 %): a u32 filter on the two low bits of the IPv4 ID field, which Linux counts up per packet
  of a connection, redirects one packet in four to a device that is down, which drops it;
- duplication (12.5 %): the same kind of filter on other ID bits mirrors one packet in eight into the
  ingress of a spare device of the same namespace, so the stack receives it twice;
- a slow link: tbf on the way out;
- a cut link: the link set down.
SYN packets are let through first (their ID is a constant, 0 in a SYN-ACK), else one end could never
connect again. Every name carries a random tag, and ``close`` deletes every namespace made.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass

INGRESS = "ffff:"
PASS_SYN, LOSS, DUPLICATE = 1, 2, 3  # filter priorities


def run(*args: str) -> str:
    """Run a command; raise with its stderr if it fails."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class End:
    """One end of a link: a device in a namespace, with its address."""

    namespace: str
    device: str
    address: str


@dataclass(frozen=True)
class Link:
    server: End
    client: End

    @property
    def ends(self) -> tuple[End, End]:
        return self.server, self.client


class Lab:
    """Namespaces and links made for one test run."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.namespaces: list[str] = []
        self._spares: dict[str, tuple[str, str]] = {}  # namespace -> (device that drops, device that duplicates)

    def namespace(self, role: str) -> str:
        """A new namespace with loopback up; ``exec_prefix`` runs a command inside it."""
        name = f"whc-{self.tag}-{role}"
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        for key in ("all", "default"):  # duplicates arrive on a spare device: no reverse-path check
            run("ip", "netns", "exec", name, "sysctl", "-q", "-w", f"net.ipv4.conf.{key}.rp_filter=0")
        return name

    @staticmethod
    def exec_prefix(namespace: str) -> tuple[str, ...]:
        return ("ip", "netns", "exec", namespace)

    def link(self, server_ns: str, client_ns: str, number: int) -> Link:
        """A veth pair with 10.200.<number>.1 at the server end and .2 at the client end."""
        link = Link(End(server_ns, f"l{number}s{self.tag}", f"10.200.{number}.1"),
                    End(client_ns, f"l{number}c{self.tag}", f"10.200.{number}.2"))
        run("ip", "link", "add", "name", link.server.device, "netns", server_ns, "type", "veth",
            "peer", "name", link.client.device, "netns", client_ns)
        for end in link.ends:
            run("ip", "-n", end.namespace, "addr", "add", f"{end.address}/24", "dev", end.device)
            run("ip", "-n", end.namespace, "link", "set", end.device, "up")
            run("tc", "-n", end.namespace, "qdisc", "add", "dev", end.device, "ingress")
            run("tc", "-n", end.namespace, "filter", "add", "dev", end.device, "parent", INGRESS, "protocol", "ip",
                "prio", str(PASS_SYN), "u32", "match", "u8", "0x02", "0x02", "at", "33", "flowid", ":1")
            self._spare_devices(end.namespace)
        return link

    def _spare_devices(self, namespace: str) -> tuple[str, str]:
        if namespace not in self._spares:
            index = len(self._spares)
            drop, duplicate = f"d{index}x{self.tag}", f"d{index}m{self.tag}"
            run("ip", "-n", namespace, "link", "add", "name", drop, "type", "veth", "peer", "name", drop + "p")
            run("ip", "-n", namespace, "link", "add", "name", duplicate, "type", "veth", "peer", "name",
                duplicate + "p")
            for device in (duplicate, duplicate + "p"):
                run("ip", "-n", namespace, "link", "set", device, "up")
            run("ip", "netns", "exec", namespace, "sysctl", "-q", "-w", f"net.ipv4.conf.{duplicate}.rp_filter=0")
            self._spares[namespace] = (drop, duplicate)  # drop stays down: what is redirected there is dropped
        return self._spares[namespace]

    # --- faults -----------------------------------------------------------------------------
    def lose(self, link: Link) -> None:
        """Drop one packet in four, each way (data one way, acks the other)."""
        for end in link.ends:
            drop, _ = self._spares[end.namespace]
            self._filter(end, LOSS, "0", "0x0003", "action", "mirred", "egress", "redirect", "dev", drop)

    def duplicate(self, link: Link) -> None:
        """Deliver one packet in eight twice, each way."""
        for end in link.ends:
            _, spare = self._spares[end.namespace]
            self._filter(end, DUPLICATE, "1", "0x0007", "action", "mirred", "ingress", "mirror", "dev", spare)

    def slow(self, link: Link, rate: str = "64kbit") -> None:
        """Limit both directions to ``rate``."""
        for end in link.ends:
            run("tc", "-n", end.namespace, "qdisc", "replace", "dev", end.device, "root", "tbf", "rate", rate,
                "burst", "4kb", "latency", "400ms")

    def cut(self, link: Link) -> None:
        """Take the link down at the server end (the client's device stays up, without carrier)."""
        run("ip", "-n", link.server.namespace, "link", "set", link.server.device, "down")

    def mend(self, link: Link) -> None:
        """Undo every fault on the link."""
        run("ip", "-n", link.server.namespace, "link", "set", link.server.device, "up")
        for end in link.ends:
            for priority in (LOSS, DUPLICATE):
                subprocess.run(["tc", "-n", end.namespace, "filter", "del", "dev", end.device, "parent", INGRESS,
                                "prio", str(priority)], capture_output=True, timeout=30)  # absent: nothing to do
            subprocess.run(["tc", "-n", end.namespace, "qdisc", "del", "dev", end.device, "root"],
                           capture_output=True, timeout=30)

    def packets_hit(self, link: Link) -> int:
        """Packets the loss and duplication filters acted on so far (tc's counters), both ends."""
        total = 0
        for end in link.ends:
            shown = run("tc", "-n", end.namespace, "-s", "filter", "show", "dev", end.device, "parent", INGRESS)
            for line in shown.splitlines():
                words = line.split()
                if words[:1] == ["Sent"] and "pkt" in words:
                    total += int(words[words.index("pkt") - 1])
        return total

    def _filter(self, end: End, priority: int, value: str, mask: str, *action: str) -> None:
        run("tc", "-n", end.namespace, "filter", "replace", "dev", end.device, "parent", INGRESS, "protocol", "ip",
            "prio", str(priority), "u32", "match", "u16", value, mask, "at", "4", *action)

    def close(self) -> None:
        """Delete every namespace made (and with them their devices); keep going past failures."""
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        self.namespaces.clear()

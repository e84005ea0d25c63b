"""Load generator: C concurrent clients on loopback speaking protocol v1 with acks.

Each client keeps a bounded window of unacked lines in flight and records, for every
chunk it sends, how long until an ack covered it. Used by bench_server.py.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections import deque
from dataclasses import dataclass, field

HELLO = b'{"hello": 1, "acks": true}\n'
TEMPLATE = (
    b'{"time":"2026-11-24T12:00:00.000000Z","sh_id":"rpi%03d","ori_r":12.345678,"ori_p":1.2345678,'
    b'"ori_y":359.12345,"gyr_x":0.00123,"gyr_y":-0.0123,"gyr_z":0.0002,"acc_x":0.0123,"acc_y":-0.998,'
    b'"acc_z":0.0345,"session":"bench%d","seq":%d}\n'
)


@dataclass
class Stream:
    """One client connection."""

    sock: socket.socket
    unit: int
    session: int
    sent: int = 0
    acked: int = 0
    hello_done: bool = False
    inbuf: bytes = b""
    out: bytes = b""
    chunks: deque[tuple[int, float]] = field(default_factory=deque)  # (line count after chunk, send time)


def lines(unit: int, session: int, start: int, count: int) -> bytes:
    return b"".join(TEMPLATE % (unit, session, seq) for seq in range(start, start + count))


def run(host: str, port: int, clients: int, seconds: float, rate: float | None, window: int = 2000,
        chunk: int = 500, session: int = 0) -> dict[str, float]:
    """Drive ``clients`` connections for ``seconds``; ``rate`` is readings/s per client (None: flat out).

    Returns sent and acked counts and ack latencies (seconds) of every chunk.
    """
    selector = selectors.DefaultSelector()
    streams = []
    for index in range(clients):
        sock = socket.create_connection((host, port), timeout=30)
        sock.setblocking(False)
        stream = Stream(sock, index % 1000, session * 100000 + index, out=HELLO)
        streams.append(stream)
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, stream)
    latencies: list[float] = []
    start = time.monotonic()
    end = start + seconds
    drain_until = end + 30
    while True:
        now = time.monotonic()
        if now > drain_until or (now > end and all(s.acked >= s.sent for s in streams)):
            break
        for key, mask in selector.select(0.01):
            stream: Stream = key.data
            if mask & selectors.EVENT_READ:
                receive(stream, latencies)
            if mask & selectors.EVENT_WRITE:
                _send(stream, now, end, start, rate, window, chunk)
        if rate is not None:  # paced clients: re-arm writes on the schedule
            for stream in streams:
                if not stream.out and now < end:
                    _send(stream, now, end, start, rate, window, chunk)
    for stream in streams:
        stream.sock.close()
    return {
        "sent": sum(s.sent for s in streams),
        "acked": sum(s.acked for s in streams),
        "elapsed": time.monotonic() - start,
        "latencies": latencies,  # type: ignore[dict-item]
    }


def _send(stream: Stream, now: float, end: float, start: float, rate: float | None, window: int, chunk: int) -> None:
    if not stream.out and stream.hello_done and now < end:
        due = chunk if rate is None else int((now - start) * rate) - stream.sent
        count = min(due, chunk, window - (stream.sent - stream.acked))
        if count > 0:
            stream.out = lines(stream.unit, stream.session, stream.sent, count)
            stream.sent += count
            stream.chunks.append((stream.sent, now))
    if stream.out:
        try:
            stream.out = stream.out[stream.sock.send(stream.out):]
        except BlockingIOError:
            pass


def receive(stream: Stream, latencies: list[float]) -> None:
    """Read the server's replies: the hello's answer and acks (each ack times the chunks it covers)."""
    try:
        data = stream.sock.recv(65536)
    except BlockingIOError:
        return
    if not data:
        raise ConnectionError("server closed a benchmark connection")
    now = time.monotonic()
    stream.inbuf += data
    *complete, stream.inbuf = stream.inbuf.split(b"\n")
    for line in complete:
        if line.startswith(b'{"ack": '):
            stream.acked = int(line[8:-1])
            while stream.chunks and stream.chunks[0][0] <= stream.acked:
                latencies.append(now - stream.chunks.popleft()[1])
        elif line == b'{"ok": 1}':
            stream.hello_done = True

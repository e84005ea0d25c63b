"""The forwarder against servers that misbehave: silent, refusing, restarting."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from harness import ServerProcess, wait_for

from whc.buffering.buffer import Buffer
from whc.buffering.forwarder import Forwarder


def fill(buffer: Buffer, count: int) -> None:
    for _ in range(count):
        buffer.add({"time": "2026-01-01T00:00:00.000000Z", "sh_id": "rpi01", "acc_x": 0.5})


class SilentServer:
    """Accepts, answers the hello, reads everything, never acks: a hung aggregator."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            conn.recv(4096)
            conn.sendall(b'{"ok": 1}\n')
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        with conn:
            while conn.recv(65536):
                pass

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


def test_a_server_that_never_acks_counts_as_gone_and_is_left(tmp_path: Path) -> None:
    silent = SilentServer()
    buffer = Buffer(tmp_path / "spool", 2**20, 1000, 60.0)
    fill(buffer, 10)
    forwarder = Forwarder(buffer, [("127.0.0.1", silent.port)], max_in_flight=100, ack_timeout=0.5)
    forwarder.start()
    try:
        wait_for(lambda: silent.connections >= 2, 10, what="a reconnect after the ack timeout")
        assert buffer.backlog == 10, "nothing unacknowledged leaves the buffer"
    finally:
        forwarder.stop()
        silent.close()


def test_fails_over_to_the_next_server_and_delivers_everything(tmp_path: Path, server_factory) -> None:
    silent = SilentServer()
    real: ServerProcess = server_factory()
    buffer = Buffer(tmp_path / "spool", 2**20, 1000, 60.0)
    fill(buffer, 500)
    forwarder = Forwarder(buffer, [("127.0.0.1", silent.port), ("127.0.0.1", real.port)], max_in_flight=100,
                          ack_timeout=0.5)
    forwarder.start()
    try:
        wait_for(lambda: buffer.backlog == 0, 20, what="every reading acknowledged")
    finally:
        forwarder.stop()
        silent.close()
    assert [int(r["seq"]) for r in real.rows()] == list(range(500))


class BabblingServer(SilentServer):
    """Answers the hello, then sends what no server should: not an object, an ack for lines never sent."""

    def __init__(self, garbage: bytes) -> None:
        self.garbage = garbage
        super().__init__()

    def _drain(self, conn: socket.socket) -> None:
        with conn:
            conn.sendall(self.garbage)
            while conn.recv(65536):
                pass


def test_nonsense_from_a_server_makes_the_forwarder_reconnect_never_die(tmp_path: Path) -> None:
    """Found in review: a reply like ``5`` killed the forwarder thread for good."""
    for garbage in (b"5\n", b"[1]\n", b'{"ack": 1000}\n', b'{"ack": "3"}\n'):
        server = BabblingServer(garbage)
        buffer = Buffer(tmp_path / f"spool{len(garbage)}", 2**20, 1000, 60.0)
        fill(buffer, 3)
        forwarder = Forwarder(buffer, [("127.0.0.1", server.port)], max_in_flight=100, ack_timeout=5)
        forwarder.start()
        try:
            wait_for(lambda s=server: s.connections >= 2, 10, what=f"a reconnect after {garbage!r}")
            assert forwarder.is_alive()
            assert buffer.backlog == 3, "an ack for lines never sent acknowledges nothing"
        finally:
            forwarder.stop()
            server.close()

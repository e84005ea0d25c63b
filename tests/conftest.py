"""Fixtures shared by all tests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import SenderProcess, ServerProcess

from whc.parsers import PARSERS

# Senders started by tests lock a HAT of their own, never the machine's (/run/lock), which a real sender may hold.
os.environ.setdefault("WHC_HAT_LOCK_DIR", tempfile.mkdtemp(prefix="whc-hat-lock-"))


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator:
    """Servers with given settings (started unless start=False); every one still running is killed at the end."""
    made: list[ServerProcess] = []

    def make(folder: Path | None = None, *extra: str, start: bool = True, **settings) -> ServerProcess:
        server = ServerProcess(folder or tmp_path, **settings)
        made.append(server)
        return server.start(*extra) if start else server

    yield make
    for server in made:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()


@pytest.fixture
def sender_factory() -> Iterator:
    """Emulated senders for a config file; every one still running is killed at the end."""
    made: list[SenderProcess] = []

    def make(config_path: Path) -> SenderProcess:
        sender = SenderProcess(config_path)
        made.append(sender)
        return sender

    yield make
    for sender in made:
        if sender.proc is not None and sender.proc.poll() is None:
            sender.proc.kill()
            sender.proc.wait(10)


@pytest.fixture(params=sorted(PARSERS))
def parser_name(request) -> str:
    """Each line parser in turn (tests that take this run once per parser)."""
    return request.param


@pytest.fixture
def server(server_factory) -> ServerProcess:
    """A server with default settings in a temporary folder."""
    return server_factory()

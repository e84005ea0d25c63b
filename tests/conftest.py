"""Fixtures shared by all tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ServerProcess


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator:
    """Start servers with given settings; every one still running is killed at the end."""
    started: list[ServerProcess] = []

    def start(folder: Path | None = None, *extra: str, **settings) -> ServerProcess:
        server = ServerProcess(folder or tmp_path, **settings)
        started.append(server)
        return server.start(*extra)

    yield start
    for server in started:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()


@pytest.fixture
def server(server_factory) -> ServerProcess:
    """A server with default settings in a temporary folder."""
    return server_factory()

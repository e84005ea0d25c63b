"""Shared by the monitoring tests: the Debian tools they drive (installed by scripts/test.sh)."""

from __future__ import annotations

import os
import shutil

import pytest


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} missing: scripts/test.sh should have installed Debian's {package}")
        pytest.skip(f"{tool} not installed (apt install {package}; scripts/test.sh does it as root)")
    return path


@pytest.fixture
def need():
    """``need(tool, package)``: the tool's path; in CI a missing tool fails the test, elsewhere it skips."""
    return _need

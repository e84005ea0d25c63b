"""requirements-pi-test.txt installs the sender's test tools on a Pi without replacing apt's numpy or Pillow."""

from __future__ import annotations

import re
from importlib.metadata import requires
from pathlib import Path

from harness import ROOT
from packaging.markers import default_environment
from packaging.requirements import Requirement

PI_REQUIREMENTS = ROOT / "requirements-pi-test.txt"
FROM_APT = {"numpy", "pillow"}  # python3-numpy and python3-pil, which sense_hat itself imports


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(path: Path = PI_REQUIREMENTS) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, pin = line.partition("==")
            name = name.split("[", 1)[0]
            assert sep and pin, f"not pinned: {line}"
            pins[canonical(name)] = pin
    return pins


def runtime_dependencies(package: str) -> set[str]:
    """Names ``package`` needs on Python 3.11 on Linux (no extras)."""
    env = {**default_environment(), "python_version": "3.11", "sys_platform": "linux", "extra": ""}
    names = set()
    for text in requires(package) or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate(env):
            names.add(canonical(requirement.name))
    return names


def test_nothing_that_apt_provides_or_the_sender_tests_do_not_need() -> None:
    pins = pinned()
    assert not FROM_APT & set(pins)
    assert not {"psycopg", "psycopg-binary", "matplotlib", "hypothesis", "ruff"} & set(pins)


def test_installing_with_no_deps_misses_nothing() -> None:
    pins = pinned()
    for package in pins:
        missing = runtime_dependencies(package) - set(pins) - FROM_APT
        assert not missing, f"{package} needs {missing}, which pip --no-deps would not install"


def test_same_pins_as_requirements_dev() -> None:
    dev = pinned(ROOT / "requirements-dev.txt")
    shared = set(dev) & set(pinned())
    assert {"sense-emu", "pytest", "pytest-timeout"} <= shared
    assert all(dev[name] == pinned()[name] for name in shared)

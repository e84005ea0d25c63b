"""The README documents every config key, every CSV column and the two commands as they are."""

from __future__ import annotations

import re

from harness import ROOT

from whc import config
from whc.columns import NAMES

README = (ROOT / "README.md").read_text()


def test_every_config_key_has_a_row_with_its_default() -> None:
    for key in config.KEYS:
        row = re.search(rf"^\| `{key.name}` \| ([^|]+) \|", README, re.M)
        assert row, f"README has no row for key {key.name}"
        if isinstance(key.default, (int, float, str)) and not isinstance(key.default, bool):
            assert str(key.default).strip('"') in row.group(1), f"default of {key.name}"


def test_every_csv_column_is_documented() -> None:
    for name in NAMES:
        assert f"`{name}`" in README, f"column {name} missing from the README"


def test_the_two_commands_exist_and_ci_runs_the_test_one() -> None:
    assert "bash scripts/demo.sh" in README and "bash scripts/test.sh" in README
    assert (ROOT / "scripts" / "demo.sh").exists() and (ROOT / "scripts" / "test.sh").exists()
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()

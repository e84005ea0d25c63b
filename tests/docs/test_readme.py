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


def layout_entries() -> list[tuple[list[str], str]]:
    """(paths, description) for each line of the README's Layout block, nesting by indentation."""
    block = README.split("## Layout", 1)[1].split("```", 2)[1]
    entries, parents = [], []
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = (len(line) - len(line.lstrip())) // 2
        names, _, description = line.strip().partition("  ")
        parents = parents[:indent]
        folder = "".join(parents)
        paths = [folder + name.strip() for name in names.split(", ")]
        entries.append((paths, description.strip()))
        if names.endswith("/"):
            parents.append(names.strip())
    return entries


def test_every_path_in_the_layout_exists() -> None:
    entries = layout_entries()
    assert len(entries) > 20
    for paths, _ in entries:
        for path in paths:
            assert list(ROOT.glob(path)), f"README Layout names {path}, which does not exist"


def test_every_package_module_is_in_the_layout() -> None:
    listed = {path for paths, _ in layout_entries() for path in paths}
    for module in sorted((ROOT / "whc").rglob("*.py")):
        relative = module.relative_to(ROOT).as_posix()
        if module.name == "__init__.py" or "__pycache__" in relative:
            continue
        assert relative in listed, f"{relative} is missing from the README's Layout block"

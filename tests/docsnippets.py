"""Blocks of code out of the docs, so the tests run what a reader copies."""

from __future__ import annotations

import re

from harness import ROOT

_MARKED = re.compile(r"<!-- recipe: (?P<name>[^ ]+) -->\n```[a-z]*\n(?P<body>.*?)\n```\n", re.S)


def recipes(doc: str) -> dict[str, str]:
    """Every block of ``docs/<doc>`` that follows a ``<!-- recipe: NAME -->`` line, by name."""
    text = (ROOT / "docs" / doc).read_text()
    found = {m["name"]: m["body"] + "\n" for m in _MARKED.finditer(text)}
    assert found, f"no recipes in docs/{doc}"
    return found


def fill(text: str, replacements: dict[str, object]) -> str:
    """``text`` with each key replaced by its value; every key must occur (so docs and tests agree)."""
    for old, new in replacements.items():
        assert old in text, f"{old!r} not in the recipe"
        text = text.replace(old, str(new))
    return text

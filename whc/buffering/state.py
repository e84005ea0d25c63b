"""The sender's state file, ``state.json`` beside the spool segments, written so it never goes back.

Fields: ``session`` and ``next_seq`` (numbering of new readings), ``acked`` (positions below it are
stored by the server), ``end`` (position after the last record on disk), ``holes`` (lost position ranges
already counted) and ``clean`` (true only when written by a clean stop). Every write is: temporary file,
fsync, rename over, fsync of the folder, so a power cut leaves either the old or the new state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..durable import replace_file

STATE_FILE = "state.json"


def read(folder: Path) -> tuple[dict[str, Any], str | None]:
    """The state, or ``{}`` and why there is none (None: no file, as on a first start)."""
    path = folder / STATE_FILE
    try:
        state = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError) as exc:
        return {}, f"{path} is unreadable ({exc})"
    if not isinstance(state, dict):
        return {}, f"{path} holds no state object"
    for key in ("next_seq", "acked", "end"):
        if key in state and (type(state[key]) is not int or state[key] < 0):
            return {}, f"{path} has a bad {key!r}"
    return state, None


def write(folder: Path, state: dict[str, Any]) -> None:
    """Replace the state durably; raises OSError (the old state is then still in place, or the new one)."""
    replace_file(folder / STATE_FILE, json.dumps(state, separators=(",", ":")).encode())

"""The server's wall clock, in one place so tests can move it.

``WHC_TEST_CLOCK_OFFSET`` (seconds, may be negative or fractional) is for the test suite only: it
lets a test start a server a few seconds before an hour or a day begins, so time rotation can be
tested without waiting. It is not a setting: users never need it, and server.json has no key for it.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

_OFFSET = float(os.environ.get("WHC_TEST_CLOCK_OFFSET", "0") or 0)


def now() -> float:
    """Seconds since the epoch (UTC), as the server sees them."""
    return time.time() + _OFFSET


def utc_datetime() -> datetime:
    """``now`` as an aware UTC datetime."""
    return datetime.fromtimestamp(now(), UTC)

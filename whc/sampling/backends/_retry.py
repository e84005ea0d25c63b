"""One sensor that can fail on its own: failures counted, logged once with the fix, retried with backoff."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ...exc import one_line

log = logging.getLogger(__name__)

FIRST_RETRY = 2.0  # seconds after the first failure
MAX_RETRY = 300.0  # the wait doubles up to this (5 minutes)


class SensorGuard:
    """Decides when a failed sensor is tried again; never on every row.

    ``failed()`` counts the failure and logs it (once per outage, with ``fix``); the next try is allowed after
    2 s, then 4, 8... up to 5 minutes. ``ok()`` ends an outage (logged). A permanent failure (no such sensor on
    this board) is never retried.
    """

    def __init__(self, name: str, fix: Callable[[BaseException], str], clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.fix = fix
        self.clock = clock
        self.failures = 0
        self.permanent = False
        self._delay = FIRST_RETRY
        self._next_try = 0.0
        self._down = False

    def ready(self) -> bool:
        """True if the sensor may be read (or its init tried) now."""
        return not self.permanent and self.clock() >= self._next_try

    def failed(self, error: BaseException, permanent: bool = False) -> None:
        self.failures += 1
        self.permanent = permanent
        if not self._down:
            self._down = True
            fix = self.fix(error)
            when = "not retried" if permanent else f"retried after {self._delay:g} s, then less and less often"
            log.warning("%s failed (%s); its columns stay empty, %s%s", self.name, one_line(error), when,
                        f"; {fix}" if fix else "")
        self._next_try = self.clock() + self._delay
        self._delay = min(self._delay * 2, MAX_RETRY)

    def ok(self) -> None:
        if self._down:
            self._down = False
            log.warning("%s works again after %d failure(s)", self.name, self.failures)
        self._delay = FIRST_RETRY


"""Group commit: one thread writes every connection's batches, fsyncs once, then reports them done."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from ..config import Config
from ..exc import StorageError
from ..logs import RateLimitedLog
from . import Batch
from .rejects import RejectsLog
from .sinks import Sink, open_sink

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 10.0
MAX_BATCHES_PER_COMMIT = 4096
RETRY_FIRST, RETRY_MAX = 0.2, 5.0
IDLE_TICK = 1.0  # seconds between the sink's housekeeping calls while nothing arrives


class Committer(threading.Thread):
    """Takes whatever batches are queued, stores them, commits durably, then calls ``on_commit``.

    It owns the sink and the rejects log. Callers use ``encode`` (a reading into the row this
    sink stages), ``takes_runs``, ``submit``, ``stop``, ``close`` and the counters.

    On a storage error nothing is reported done: the same commit is retried with backoff
    while new batches wait in the queue (the server stops reading when too much waits).
    """

    def __init__(self, sink: Sink, rejects: RejectsLog, on_commit: Callable[[list[Batch]], None]) -> None:
        super().__init__(name="committer", daemon=True)
        self.sink = sink
        self.encode = sink.encode
        self.takes_runs = sink.takes_runs
        self.rejects = rejects
        self.on_commit = on_commit
        self._queue: deque[Batch] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._reopen = False
        self._maintain_log = RateLimitedLog(60.0)
        self.written = 0
        self.duplicates = 0
        self.rejected = 0
        self.failing: str | None = None  # the error while writes fail
        self.crashed: BaseException | None = None  # an unexpected error ended the thread

    def submit(self, batch: Batch) -> None:
        with self._cond:
            self._queue.append(batch)
            if len(self._queue) == 1:
                self._cond.notify()

    def request_reopen(self) -> None:
        """Close and reopen the files by name between two commits (SIGHUP)."""
        with self._cond:
            self._reopen = True
            self._cond.notify()

    def stop(self, timeout: float) -> bool:
        """Commit what is queued, then end; False if that did not finish within ``timeout``."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self.join(timeout)
        return not self.is_alive()

    def known_units(self) -> set[str]:
        """The sh_ids the sink already holds readings of (as far as it knows cheaply)."""
        return self.sink.known_units()

    def close(self) -> None:
        """After ``stop``: checkpoint the sink and release its files and connections."""
        self.sink.close()
        self.rejects.close()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # a bug, not a storage error: make it loud and stop the server
            log.critical("committer crashed; nothing more will be acknowledged", exc_info=True)
            self.crashed = exc
            self.on_commit([])

    def _run(self) -> None:
        last_checkpoint = time.monotonic()
        while True:
            with self._cond:
                if not self._queue and not self._stopping and not self._reopen:
                    self._cond.wait(IDLE_TICK)
                reopen, self._reopen = self._reopen, False
                if not self._queue and self._stopping:
                    break
                count = min(len(self._queue), MAX_BATCHES_PER_COMMIT)
                batches = [self._queue.popleft() for _ in range(count)]
            if reopen:
                self._reopen_files()
            if not batches:
                self._maintain()
                continue
            self._commit(batches)
            self.on_commit(batches)
            if time.monotonic() - last_checkpoint > CHECKPOINT_EVERY:
                last_checkpoint = time.monotonic()
                self._checkpoint()
        self._checkpoint()

    def _commit(self, batches: list[Batch]) -> None:
        stage = self.sink.stage
        duplicates = rejected = 0
        for batch in batches:
            if batch.rows:
                duplicates += _stage_spans(stage, batch)
            if batch.rejects:
                self.rejects.stage(batch.rejects)
                rejected += len(batch.rejects)
        delay = RETRY_FIRST
        while True:
            try:
                written = self.sink.commit()
                self.rejects.commit()
                duplicates += self.sink.commit_duplicates
                break
            except (StorageError, OSError) as exc:
                if self.failing is None:
                    log.error("WRITES FAILING, acknowledgements stopped until they succeed: %s", exc)
                self.failing = str(exc)
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
        if self.failing is not None:
            log.warning("writes succeed again; acknowledging")
            self.failing = None
        self.written += written
        self.duplicates += duplicates
        self.rejected += rejected

    def _reopen_files(self) -> None:
        try:
            self.sink.reopen()
            self.rejects.reopen()
        except (StorageError, OSError) as exc:  # the old files stay in use (the sink keeps them if it can)
            log.error("reopening files failed: %s", exc)

    def _maintain(self) -> None:
        try:
            self.sink.maintain()
        except (StorageError, OSError) as exc:
            if self._maintain_log.due("maintain", time.monotonic()):
                more = self._maintain_log.take_suppressed("maintain")
                log.warning("sink housekeeping failed (retried every second): %s%s", exc,
                            f" ({more} more failures since last logged)" if more else "")

    def _checkpoint(self) -> None:
        try:
            self.sink.checkpoint()
        except OSError as exc:
            log.warning("checkpoint failed: %s", exc)


def _stage_spans(stage: Callable[[list], int], batch: Batch) -> int:
    """Stage a batch's rows, one unit span at a time so each span learns its duplicates."""
    spans = batch.spans
    if len(spans) <= 1:  # the usual case: the rows as they are, no copy
        duplicates = stage(batch.rows)
        for span in spans:
            span.duplicates = duplicates
        return duplicates
    total = 0
    for span in spans:
        span.duplicates = stage(batch.rows[span.start:span.end])
        total += span.duplicates
    return total


def open_storage(config: Config, on_commit: Callable[[list[Batch]], None]) -> Committer:
    """The committer for the configured sink and rejects log (not started)."""
    rejects = RejectsLog(config.resolve("rejects"))
    sink = open_sink(config, rejects)
    log.info("writing readings to %s, rejected lines to %s", sink.describe(), rejects.file.path)
    return Committer(sink, rejects, on_commit)

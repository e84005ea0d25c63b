"""One client connection: hello, validation of its lines, acks and error lines (``Framer`` cuts the lines).

The handler does no blocking I/O: ``feed`` turns received bytes into a ``Batch`` for the
committer, and ``outgoing`` composes what to send once batches are durably handled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .. import framing, protocol
from ..exc import ProtocolError
from ..parsers import Parser
from ..parsers.runs import MIN_LINES as MIN_RUN_LINES
from ..parsers.stdlib import StdlibParser
from ..storage import Batch, Row
from ..storage.rejects import reject_record
from .access import redact, token_matches
from .replies import Replies

log = logging.getLogger(__name__)


class Handler:
    """Protocol state of one connection (the ``socketserver`` request-handler role).

    The server calls ``feed``, ``abandon_partial``, ``committed``, ``outgoing``, ``has_output``,
    ``require_identity``, ``take_status`` and ``stop_reading``, and reads ``ip``, ``sh_id``, ``status``,
    ``lines``, ``rejected``, ``replies``, ``finished`` and ``auth_failure``; it sets nothing else.
    """

    def __init__(self, ip: str, max_line_bytes: int, encode: Callable[[protocol.Reading], Row],
                 token: bytes | None = None, identities: frozenset[str] | None = None,
                 parser: Parser | None = None, runs: bool = False) -> None:
        self.ip = ip
        self.encode = encode
        self.runs = runs  # the sink stores a run's CSV lines as they are (see _take_run)
        self.parser = parser or StdlibParser()  # lines (without newline) to readings (see whc/parsers)
        self.token = token  # required in the hello, if set
        self.identities = identities  # the names of the client's certificate, if sh_id must match them
        self.auth_failure: str | None = None  # why the client was refused; nothing more of it is kept
        self.trusted = token is None  # with a token, nothing is recorded until a hello carrying it is accepted
        self.max_line_bytes = max_line_bytes
        self.framer = framing.Framer()
        self.seen_first = False
        self.owed = Replies()  # what the client is owed back (see replies)
        self.lines = 0  # lines after the hello, each a reading or a reject
        self.rejected = 0
        self.finished: str | None = None  # why no more input will be read
        self.sh_id: str | None = None  # the unit named in the hello
        self.status: dict | None = None  # the newest status line not yet taken by the server

    @property
    def replies(self) -> bool:
        """Whether this client gets anything written back (it sent a hello, so it reads)."""
        return self.owed.hello

    def has_output(self) -> bool:
        """Something is due to the client: the hello answer, error lines or a newer ack."""
        return self.owed.due()

    def require_identity(self, names: frozenset[str]) -> None:
        """Every reading's sh_id must be one of ``names`` (the client certificate's)."""
        self.identities = names

    def stop_reading(self, reason: str) -> None:
        """No more input will be taken from this client."""
        self.finished = reason

    def feed(self, data: bytes, recv_time: str, eof: bool = False) -> Batch | None:
        """Handle received bytes (and, at ``eof``, the unterminated rest); return what to commit.

        The whole lines of a chunk go as one run if they are one (``_take_run``). Else the plain lines
        that begin it go at once and the rest one by one; a connection's first line goes on its own
        first, so that what follows the hello may be a run."""
        batch = Batch(None, self.lines, len(data))
        if self.runs and not eof and data.count(b"\n") >= MIN_RUN_LINES:  # (a sender's stream: runs)
            whole = self.framer.whole_lines(data, self.max_line_bytes)
            if whole is not None and self._take_run(whole[0], batch, recv_time):
                self.framer.keep(whole[1])
                return self._end_of_chunk(batch, recv_time)
        lines = self.framer.lines(data, eof)
        if not self.seen_first and len(lines) > 1 and not eof:  # a first chunk: its first line (the hello)
            self._take_each(lines[:1], batch, recv_time)  # on its own, so the rest may be a run
            lines = lines[1:]
            if len(lines) >= MIN_RUN_LINES and max(map(len, lines)) <= self.max_line_bytes \
                    and self._take_run(b"\n".join(lines) + b"\n", batch, recv_time):
                lines = []
        taken = self._take_plain(lines, batch, recv_time) if lines else 0
        if taken < len(lines):
            self._take_each(lines[taken:] if taken else lines, batch, recv_time)
        return self._end_of_chunk(batch, recv_time)

    def _take_run(self, block: bytes, batch: Batch, recv_time: str) -> bool:
        """Take whole lines (``block``) at once if they are a plain run (the common case); False if not."""
        if not self.runs or batch.rows or not self.seen_first or not self.trusted or self.finished:
            return False  # (a batch that holds a run holds no other rows)
        run = self.parser.parse_run(block, recv_time, self.ip)
        if run is None or self.identities is not None and run.sh_id not in self.identities:
            return False
        batch.add_run(run.sh_id, run.key, run.first_seq, run.lines, run.first, run.last)
        self.lines += len(run.lines)
        return True

    def _take_plain(self, lines: list[bytes], batch: Batch, recv_time: str) -> int:
        """Take the plain readings that begin a chunk at once (all its lines, in the common case); how many."""
        if not self.seen_first or not self.trusted or self.finished or max(map(len, lines)) > self.max_line_bytes:
            return 0  # (nor before a token's hello: then nothing is seen yet)
        readings = self.parser.parse_many(lines, recv_time, self.ip)
        if self.identities is not None and not self.identities.issuperset([r["sh_id"] for r in readings]):
            return 0  # each line's own way refuses the connection at the right line
        batch.add_spans(readings, len(batch.rows))
        batch.rows.extend(map(self.encode, readings))
        self.lines += len(readings)
        return len(readings)

    def _take_each(self, lines: list[bytes], batch: Batch, recv_time: str) -> None:
        """Handle lines one by one: hellos, status lines, readings, refusals and pieces of lines."""
        encode, parse = self.encode, self.parser.parse
        first_row = len(batch.rows)
        readings = []
        # Pieces of a line holding several objects are inserted right after it, and this loop
        # handles them next (a list iterator sees items inserted after its position).
        for index, line in enumerate(lines):
            if self.auth_failure:
                break
            if len(line) > self.max_line_bytes:
                if self.framer.split(lines, index, line):
                    continue
                if not self.trusted:
                    self._fail_auth(f"first line longer than {self.max_line_bytes} bytes, before a hello")
                    break
                self._too_long(line, batch, recv_time)
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line.strip():
                continue  # empty lines carry nothing and are not counted
            if not self.seen_first:
                if self.framer.split(lines, index, line):  # once per connection: a hello may share its line
                    continue
                self.seen_first = True
                if self._maybe_hello(line, batch, recv_time):
                    continue
            if line.startswith(protocol.STATUS_PREFIX):  # health, not a reading: not counted as a line
                if self.framer.split(lines, index, line):  # a status line and readings in a row: each on its own
                    continue
                self._take_status(line, batch, recv_time)
                continue
            self.lines += 1
            if self.finished:  # received before the connection closes: recorded, not stored
                self._reject(batch, recv_time, f"not stored: connection closing ({self.finished})", line)
                continue
            try:
                reading = parse(line, recv_time, self.ip)
            except ProtocolError as exc:
                if self.framer.split(lines, index, line):
                    self.lines -= 1  # each piece counts as a line instead
                    continue
                self._reject(batch, recv_time, str(exc), line)
                continue
            if self.identities is not None and reading["sh_id"] not in self.identities:
                self.owed.error("sh_id does not match the client certificate", self.lines)
                self._fail_auth(f"sh_id {reading['sh_id']!r} does not match the client certificate")
                break
            batch.rows.append(encode(reading))
            readings.append(reading)
        batch.add_spans(readings, first_row)

    def _end_of_chunk(self, batch: Batch, recv_time: str) -> Batch | None:
        """Decide about the unterminated rest, which waits for more unless it must go now; the batch, if any."""
        rest = self.framer.rest
        if self.auth_failure:
            self.framer.take_rest()
        elif not self.trusted and len(rest) > self.max_line_bytes:
            self._fail_auth(f"first line longer than {self.max_line_bytes} bytes, before a hello")
            self.framer.take_rest()
        elif not self.trusted and self.finished:
            self.framer.take_rest()  # untrusted: dropped unrecorded
        elif len(rest) > self.max_line_bytes:
            self._too_long(self.framer.take_rest(), batch, recv_time)
        elif self.finished and rest:
            self.lines += 1
            self._reject(batch, recv_time, f"unterminated line: connection closing ({self.finished})",
                         self.framer.take_rest())
        batch.last_line = self.lines
        return batch if batch.rows or batch.rejects else None

    def abandon_partial(self, recv_time: str, reason: str, resent: bool = False) -> Batch | None:
        """Record an unfinished line as rejected (idle or stopping); None if there is none.

        Before a required hello is accepted the line is untrusted: it is dropped unrecorded and the
        connection counts as refused (``auth_failure``). With ``resent`` (the server is stopping
        while the rest of the line may still be on its way), a client with acks gets no ack for it
        and sends it again, so it is dropped uncounted and unrecorded: recording it would cover it
        with the last ack and lose the reading."""
        if not self.framer.rest.strip() or self.auth_failure:
            return None
        rest = self.framer.take_rest()
        if not self.trusted:
            self._fail_auth(f"{reason}, before a hello")
            return None
        if resent and self.owed.acks:
            return None
        batch = Batch(None, self.lines, len(rest))
        self.lines += 1
        self._reject(batch, recv_time, reason, rest[: self.max_line_bytes])
        batch.last_line = self.lines
        return batch

    def _maybe_hello(self, line: bytes, batch: Batch, recv_time: str) -> bool:
        """Handle a first line that is a hello; False if it is a reading."""
        try:
            obj = protocol.decode_line(line)
        except ProtocolError:
            obj = None
        if obj is None or not protocol.is_hello(obj):
            if self.token is not None:
                self._fail_auth("no hello with a token")
                return True
            return False
        self.owed.got_hello()
        try:
            hello = protocol.parse_hello(obj)
        except ProtocolError as exc:
            self.owed.error(str(exc), 0, always=True)
            if self.token is not None:
                self._fail_auth(f"bad hello: {exc}")
            else:
                batch.rejects.append(reject_record(recv_time, self.ip, 0, str(exc), line))
                self.finished = "bad hello"
            return True
        if self.token is not None and not token_matches(self.token, hello.token):
            self.owed.error("authentication failed", 0, always=True)
            self._fail_auth("wrong token" if hello.token is not None else "no token in the hello")
            return True
        if self.identities is not None and hello.sh_id is not None and hello.sh_id not in self.identities:
            self.owed.error("sh_id does not match the client certificate", 0, always=True)
            self._fail_auth(f"hello sh_id {hello.sh_id!r} does not match the client certificate")
            return True
        self.owed.answer_hello(hello.acks)
        self.sh_id = hello.sh_id
        self.trusted = True
        return True

    def _take_status(self, line: bytes, batch: Batch, recv_time: str) -> None:
        """Keep a status line for the server to read; a broken one is recorded (line null), not answered."""
        try:
            obj = protocol.decode_line(line)
            if obj.get("status") != "1":  # numbers are kept as their text
                raise ProtocolError('"status" must be 1: a line that starts with {"status" is a health report, '
                                    "never a reading (put another key first)")
        except ProtocolError as exc:
            batch.rejects.append(reject_record(recv_time, self.ip, None, f"status line: {exc}", line))
            return
        sh_id = obj.get("sh_id", self.sh_id)
        if self.identities is not None and (type(sh_id) is not str or sh_id not in self.identities):
            return  # health for a unit this certificate does not speak for: ignored
        self.status = obj

    def take_status(self) -> dict | None:
        """The newest status line received and not yet taken, or None."""
        status, self.status = self.status, None
        return status

    def _fail_auth(self, reason: str) -> None:
        """A security failure: the connection ends and nothing more of it is stored or recorded."""
        self.auth_failure = reason
        self.finished = "refused: " + reason
        self.trusted = False

    def _reject(self, batch: Batch, recv_time: str, reason: str, raw: bytes) -> None:
        if self.token is not None:
            raw = redact(raw, self.token)
        batch.rejects.append(reject_record(recv_time, self.ip, self.lines, reason, raw))
        if self.rejected == 0:
            log.warning("%s: line %d rejected: %s", self.ip, self.lines, reason)
        self.rejected += 1
        self.owed.error(reason, self.lines)  # (beyond a bound, only the rejects log has them)

    def _too_long(self, line: bytes, batch: Batch, recv_time: str) -> None:
        self.lines += 1
        reason = f"line longer than {self.max_line_bytes} bytes; connection closed"
        self._reject(batch, recv_time, reason, line[: self.max_line_bytes])
        self.finished = self.finished or "line too long"

    def committed(self, batch: Batch) -> None:
        """A batch of this connection is durably handled."""
        self.owed.handled_to(batch.last_line)

    def outgoing(self) -> bytes:
        """Lines to send now: the hello answer, queued errors, then the newest ack."""
        return self.owed.take()

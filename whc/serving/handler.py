"""One client connection: framing, hello, per-line validation, acks and error lines.

The handler does no blocking I/O: ``feed`` turns received bytes into a ``Batch`` for the
committer, and ``outgoing`` composes what to send once batches are durably handled.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from .. import protocol
from ..exc import ProtocolError
from ..storage import Batch, Row, UnitSpan
from ..storage.rejects import reject_record
from .access import token_matches

log = logging.getLogger(__name__)

MAX_QUEUED_ERRORS = 256  # error lines waiting for a client that does not read; more are only logged


class Handler:
    """Protocol state of one connection (the ``socketserver`` request-handler role)."""

    def __init__(self, ip: str, max_line_bytes: int, encode: Callable[[protocol.Reading], Row],
                 token: bytes | None = None, identities: frozenset[str] | None = None) -> None:
        self.ip = ip
        self.encode = encode
        self.token = token  # required in the hello, if set
        self.identities = identities  # the names of the client's certificate, if sh_id must match them
        self.auth_failure: str | None = None  # why the client was refused; nothing more of it is kept
        self.max_line_bytes = max_line_bytes
        self.partial = b""
        self.seen_first = False
        self.hello = False  # the client sent a hello, so it reads what we write
        self.acks = False
        self.lines = 0  # lines after the hello, each a reading or a reject
        self.handled = 0  # lines durably handled
        self.ack_sent = 0
        self.ok_due = False
        self.errors: deque[bytes] = deque()
        self.errors_dropped = 0
        self.rejected = 0
        self.finished: str | None = None  # why no more input will be read
        self.sh_id: str | None = None  # the unit named in the hello
        self.status: dict | None = None  # the newest status line not yet taken by the server

    @property
    def writes(self) -> bool:
        """Whether this client gets anything written back."""
        return self.hello

    def feed(self, data: bytes, recv_time: str, eof: bool = False) -> Batch | None:
        """Handle received bytes (and, at ``eof``, the unterminated rest); return what to commit."""
        batch = Batch(self, self.lines, len(data))
        encode = self.encode
        chunk = self.partial + data if self.partial else data
        lines = chunk.split(b"\n")
        spans = batch.spans
        unit = last = None
        self.partial = lines.pop()
        if eof and self.partial:
            lines.append(self.partial)  # a complete JSON object needs no newline to be whole
            self.partial = b""
        for line in lines:
            if len(line) > self.max_line_bytes:
                self._too_long(line, batch, recv_time)
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line.strip():
                continue  # empty lines carry nothing and are not counted
            if not self.seen_first:
                self.seen_first = True
                if self._maybe_hello(line, batch, recv_time):
                    continue
            if self.auth_failure:
                break
            if line.startswith(protocol.STATUS_PREFIX):  # health, not a reading: not counted as a line
                self._take_status(line, batch, recv_time)
                continue
            self.lines += 1
            if self.finished:  # received before the connection closes: recorded, not stored
                self._reject(batch, recv_time, f"not stored: connection closing ({self.finished})", line)
                continue
            try:
                reading = protocol.parse_reading(protocol.decode_line(line), recv_time, self.ip)
            except ProtocolError as exc:
                self._reject(batch, recv_time, str(exc), line)
                continue
            if self.identities is not None and reading["sh_id"] not in self.identities:
                self._refuse(f"sh_id {reading['sh_id']!r} does not match the client certificate")
                break
            batch.rows.append(encode(reading))
            if reading["sh_id"] != unit:  # a new unit in this batch (once per batch for our senders)
                if spans:
                    spans[-1].last = last
                unit = reading["sh_id"]
                spans.append(UnitSpan(unit, len(batch.rows) - 1, reading))
            last = reading
        if spans:
            spans[-1].last = last
        if self.auth_failure:
            self.partial = b""
        elif len(self.partial) > self.max_line_bytes:
            self._too_long(self.partial, batch, recv_time)
            self.partial = b""
        elif self.finished and self.partial:
            self.lines += 1
            self._reject(batch, recv_time, f"unterminated line: connection closing ({self.finished})", self.partial)
            self.partial = b""
        batch.last_line = self.lines
        if not batch.rows and not batch.rejects:
            return None
        return batch

    def abandon_partial(self, recv_time: str, reason: str) -> Batch | None:
        """Record an unfinished line as rejected (the server is stopping); None if there is none."""
        if not self.partial.strip() or self.auth_failure:
            return None
        batch = Batch(self, self.lines, len(self.partial))
        self.lines += 1
        self._reject(batch, recv_time, reason, self.partial[: self.max_line_bytes])
        self.partial = b""
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
                self._refuse("no hello with a token")
                return True
            return False
        self.hello = True
        try:
            hello = protocol.parse_hello(obj)
        except ProtocolError as exc:
            self.errors.append(protocol.encode_error(str(exc), 0))
            if self.token is not None:
                self._refuse(f"bad hello: {exc}")
            else:
                batch.rejects.append(reject_record(recv_time, self.ip, 0, str(exc), line))
                self.finished = "bad hello"
            return True
        if self.token is not None and not token_matches(self.token, hello.token):
            self.errors.append(protocol.encode_error("authentication failed", 0))
            self._refuse("wrong token" if hello.token is not None else "no token in the hello")
            return True
        if self.identities is not None and hello.sh_id is not None and hello.sh_id not in self.identities:
            self.errors.append(protocol.encode_error("sh_id does not match the client certificate", 0))
            self._refuse(f"hello sh_id {hello.sh_id!r} does not match the client certificate")
            return True
        self.acks = hello.acks
        self.sh_id = hello.sh_id
        self.ok_due = True
        return True

    def _take_status(self, line: bytes, batch: Batch, recv_time: str) -> None:
        """Keep a status line for the server to read; a broken one is recorded (line null), not answered."""
        try:
            obj = protocol.decode_line(line)
        except ProtocolError as exc:
            batch.rejects.append(reject_record(recv_time, self.ip, None, f"status line: {exc}", line))
            return
        if self.identities is not None and obj.get("sh_id", self.sh_id) not in self.identities:
            return  # health for a unit this certificate does not speak for: ignored
        self.status = obj

    def _refuse(self, reason: str) -> None:
        """A security failure: the connection ends and nothing more of it is stored or recorded."""
        self.auth_failure = reason
        self.finished = "refused: " + reason

    def _reject(self, batch: Batch, recv_time: str, reason: str, raw: bytes) -> None:
        batch.rejects.append(reject_record(recv_time, self.ip, self.lines, reason, raw))
        if self.rejected == 0:
            log.warning("%s: line %d rejected: %s", self.ip, self.lines, reason)
        self.rejected += 1
        if self.acks:
            if len(self.errors) < MAX_QUEUED_ERRORS:
                self.errors.append(protocol.encode_error(reason, self.lines))
            else:
                self.errors_dropped += 1

    def _too_long(self, line: bytes, batch: Batch, recv_time: str) -> None:
        self.lines += 1
        reason = f"line longer than {self.max_line_bytes} bytes; connection closed"
        self._reject(batch, recv_time, reason, line[: self.max_line_bytes])
        self.finished = self.finished or "line too long"

    def committed(self, batch: Batch) -> None:
        """A batch of this connection is durably handled."""
        if batch.last_line > self.handled:
            self.handled = batch.last_line

    def outgoing(self) -> bytes:
        """Lines to send now: the hello answer, queued errors, then the newest ack."""
        if not self.hello:
            return b""
        parts = []
        if self.ok_due:
            parts.append(protocol.OK_LINE)
            self.ok_due = False
        if self.errors:
            parts.extend(self.errors)
            self.errors.clear()
        if self.acks and self.handled > self.ack_sent:
            parts.append(protocol.encode_ack(self.handled))
            self.ack_sent = self.handled
        return b"".join(parts)

"""What one connection is owed back: the hello's answer, error lines, and acks once lines are durable."""

from __future__ import annotations

from collections import deque

from .. import protocol

MAX_QUEUED_ERRORS = 256  # error lines waiting for a client that does not read; more are only logged


class Replies:
    """The reply side of a connection's protocol state; nothing is owed until the client sent a hello."""

    def __init__(self) -> None:
        self.hello = False  # the client sent a hello, so it reads what we write
        self.acks = False  # it asked for acks (and error lines)
        self.ok_due = False
        self.errors: deque[bytes] = deque()
        self.handled = 0  # lines durably handled
        self.ack_sent = 0

    def got_hello(self) -> None:
        """The client sent a hello: it reads what we write (even if the hello is refused)."""
        self.hello = True

    def answer_hello(self, acks: bool) -> None:
        """The hello is accepted: answer it, then ack (if asked)."""
        self.acks = acks
        self.ok_due = True

    def error(self, reason: str, line: int, always: bool = False) -> None:
        """An error line for line number ``line``: to a client with acks (or ``always``: a hello's), up to a bound."""
        if (self.acks or always) and len(self.errors) < MAX_QUEUED_ERRORS:
            self.errors.append(protocol.encode_error(reason, line))

    def handled_to(self, line: int) -> None:
        """Lines up to ``line`` are durably handled."""
        if line > self.handled:
            self.handled = line

    def due(self) -> bool:
        """Something is owed now: the hello's answer, error lines or a newer ack."""
        return self.hello and (self.ok_due or bool(self.errors) or (self.acks and self.handled > self.ack_sent))

    def take(self) -> bytes:
        """Lines to send now: the hello's answer, queued errors, then the newest ack."""
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

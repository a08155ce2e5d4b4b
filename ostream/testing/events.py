"""What a scripted reply is made of, and what the server records of each request."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

JSON_CT = "application/json; charset=utf-8"
NDJSON_CT = "application/x-ndjson"
SSE_CT = "text/event-stream"


@dataclass
class Send:
    """One HTTP chunk (never re-framed). ``Send(b"")`` only forces the headers out."""

    data: bytes


@dataclass
class Burst:
    """``count`` copies of ``line``, ``per_chunk`` to an HTTP chunk, written as fast as
    the socket takes them: many chunks per write, so the server outruns any client and
    a million lines cost no memory. ``Recorded.sent`` gets one entry per write."""

    line: bytes
    count: int
    per_chunk: int = 1


@dataclass
class Sleep:
    """Pause, watching for the client leaving."""

    seconds: float


@dataclass
class At:
    """Pause until ``seconds`` after the reply began (or after its last :class:`Wait`).

    Unlike a chain of :class:`Sleep`, a paced stream of ``At`` events does not drift."""

    seconds: float


@dataclass
class Wait:
    """Block until the test sets ``event`` (or ``timeout`` passes), watching the client."""

    event: threading.Event
    timeout: float = 30.0


@dataclass
class Drop:
    """Close the socket abruptly: no terminating zero-size chunk."""


@dataclass
class Stall:
    """Send nothing more; hold the connection until the client leaves or the time
    passes, then drop it (no terminator)."""

    seconds: float = 60.0


Event: TypeAlias = Send | Burst | Sleep | At | Wait | Drop | Stall

# How a reply ended, as passed to Reply.on_end.
DONE, LEFT, DROPPED, STOPPED, CLOSED = "done", "left", "dropped", "stopped", "closed"


@dataclass
class Reply:
    """A scripted answer.

    ``chunked=False``: close-delimited body (no Content-Length, ``Connection: close``).
    ``content_length=True``: the whole body at once with a Content-Length, after all
    the Sleep/Wait events; a Drop then sends the headers (declaring the length of
    *all* Sends) plus the data sent before it, or nothing if no Send came before it.
    ``on_end``: called once with how the reply ended (``"done"``, ``"closed"``: the
    whole body went out; ``"left"``: the client went away; ``"dropped"``,
    ``"stopped"``), e.g. to free a simulated slot.
    """

    status: int = 200
    content_type: str = NDJSON_CT
    events: list[Event] = field(default_factory=list)
    chunked: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    content_length: bool = False
    on_end: Callable[[str], None] | None = None


@dataclass(eq=False)
class Recorded:
    """One request as the server saw it, and what happened to its reply.

    Times are ``time.monotonic()`` values: ``received_at`` (the request was read),
    each ``sent`` chunk, ``finished_at`` (the whole reply went out) and ``left_at``
    (the client closed its connection; ``left`` is set at that moment)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    received_at: float
    query: str = ""
    sent: list[tuple[float, bytes]] = field(default_factory=list)
    left_at: float | None = None
    left: threading.Event = field(default_factory=threading.Event)
    finished_at: float | None = None

    @property
    def sent_bytes(self) -> bytes:
        """All payload bytes sent (without HTTP framing)."""
        return b"".join(data for _, data in self.sent)

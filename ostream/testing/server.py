"""HTTP and framing: play a Reply byte for byte, watch the client, record the request.

Chunked transfer encoding with one HTTP chunk per Send (a Burst: many chunks a
write), written at once with Nagle
disabled; status headers written lazily with the first byte of the body, as Ollama does
(a model that "loads" for a long time sends nothing at all, not even headers).
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import socketserver
import struct
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from ostream.testing.events import (
    CLOSED,
    DONE,
    DROPPED,
    LEFT,
    STOPPED,
    At,
    Burst,
    Drop,
    Event,
    Recorded,
    Reply,
    Send,
    Sleep,
    Stall,
    Wait,
)

if TYPE_CHECKING:
    from ostream.testing.fake import FakeOllama

POLL = 0.01  # seconds between checks for a departed client
_BURST_WRITE = 1 << 16  # bytes per write of a Burst
_KILLED = "killed"


class _ClientLeft(Exception):
    pass


class _Stopping(Exception):
    pass


class _Killed(Exception):
    pass


class HTTPServer(ThreadingHTTPServer):
    """One listening socket of a FakeOllama; a thread per connection."""

    daemon_threads = True
    block_on_close = False  # FakeOllama.stop() shuts connections down and joins with a timeout

    def __init__(self, address: tuple[str, int], fake: FakeOllama) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which can hang on DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # silent: clients vanishing is the point of this server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    @property
    def fake(self) -> FakeOllama:
        return cast(HTTPServer, self.server).fake

    # ---- lifecycle

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fake._register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.fake._unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    # ---- one request

    def _serve(self) -> None:
        fake = self.fake
        rec = self._recorded(self._read_body())
        try:
            reply = fake._reply_for(rec, self._wait_for)
            self._check_server()
        except _ClientLeft:
            self.close_connection = True
            self._mark_left(rec)
            return
        except _Stopping:
            self.close_connection = True
            return
        except _Killed:
            self._reset()
            return
        client_wants_close = self.close_connection
        outcome = STOPPED
        try:
            outcome = self._play(rec, reply, client_wants_close)
        finally:
            self._ended(reply, outcome)
        self.close_connection = True
        if outcome == _KILLED:
            self._reset()
        elif outcome == LEFT:
            self._mark_left(rec)
        elif outcome == CLOSED:
            # Close-delimited body or `Connection: close`: half-close, then wait for the
            # client to close its side so `left` means the same thing everywhere.
            try:
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                return
            if self._watch_idle() == LEFT:
                self._mark_left(rec)
        elif outcome == DONE:
            state = self._watch_idle()
            if state == LEFT:
                self._mark_left(rec)
            elif state == DONE:  # the client sent its next request: keep-alive
                self.close_connection = False
            elif state == _KILLED:
                self._reset()

    def _recorded(self, body: bytes) -> Recorded:
        split = urlsplit(self.path)
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            k = key.lower()
            headers[k] = f"{headers[k]}, {value}" if k in headers else value
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        return Recorded(
            method=self.command,
            path=split.path,
            query=split.query,
            headers=headers,
            body=body,
            json=parsed,
            received_at=time.monotonic(),
        )

    def _ended(self, reply: Reply, outcome: str) -> None:
        """Tell the reply how it ended, once."""
        on_end, reply.on_end = reply.on_end, None
        if on_end is not None:
            on_end(outcome)

    def _reset(self) -> None:
        """Close with a TCP reset, as a server process that died does."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def _mark_left(self, rec: Recorded) -> None:
        if not rec.left.is_set():
            rec.left_at = time.monotonic()
            rec.left.set()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    # ---- the client and the clock

    def _client_gone(self, timeout: float) -> bool:
        """Wait up to `timeout` for the socket to turn readable; True if the client closed."""
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], timeout)
        except (OSError, ValueError):
            return True
        if not readable:
            return False
        try:
            data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if data:  # the client sent something (pipelining?): not gone
            time.sleep(timeout)
            return False
        return True

    def _check_server(self) -> None:
        if self.fake._dead.is_set():
            raise _Killed
        if self.fake._stopping.is_set():
            raise _Stopping

    def _idle(self, seconds: float, event: threading.Event | None = None) -> None:
        deadline = time.monotonic() + seconds
        while True:
            if event is not None and event.is_set():
                return
            self._check_server()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._client_gone(min(POLL, remaining)):
                self._check_server()
                raise _ClientLeft

    def _wait_for(self, event: threading.Event) -> None:
        """Block until `event` is set; raise if the client leaves or the server stops."""
        while not event.is_set():
            self._idle(3600.0, event)

    def _watch_idle(self) -> str:
        """After a reply: wait for the client to close (LEFT), to send another request
        (DONE), for the server to stop or for the idle timeout (STOPPED)."""
        fake = self.fake
        deadline = time.monotonic() + fake.idle_timeout
        sock = self.connection
        while time.monotonic() < deadline and not fake._stopping.is_set():
            if fake._dead.is_set():
                return _KILLED
            try:
                readable, _, _ = select.select([sock], [], [], 0.05)
            except (OSError, ValueError):
                return STOPPED
            if fake._stopping.is_set():
                return STOPPED
            if not readable:
                continue
            try:
                data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError:
                return LEFT
            return DONE if data else LEFT
        return STOPPED

    def _write(self, data: bytes) -> None:
        self._check_server()
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self._check_server()
            raise _ClientLeft from None

    def _pause(self, ev: Event, origin: float) -> float:
        """Play a Sleep, At or Wait; returns the new origin for At."""
        if isinstance(ev, Sleep):
            self._idle(ev.seconds)
        elif isinstance(ev, At):
            self._idle(origin + ev.seconds - time.monotonic())
        elif isinstance(ev, Wait):
            self._idle(ev.timeout, ev.event)
            return time.monotonic()
        return origin

    # ---- the reply

    def _head(
        self, status: int, content_type: str, framing: dict[str, str], extra: dict[str, str]
    ) -> bytes:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = f"status code {status}"
        fields: dict[str, tuple[str, str]] = {}
        if content_type:
            fields["content-type"] = ("Content-Type", content_type)
        fields["date"] = ("Date", self.date_time_string())
        for name, value in framing.items():
            fields[name.lower()] = (name, value)
        for name, value in extra.items():
            fields[name.lower()] = (name, value)
        lines = [f"HTTP/1.1 {status} {phrase}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in sorted(fields.values())]
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    def _play(self, rec: Recorded, reply: Reply, client_wants_close: bool) -> str:
        try:
            if reply.content_length:
                return self._play_whole(rec, reply, client_wants_close)
            return self._play_stream(rec, reply, client_wants_close)
        except _ClientLeft:
            return LEFT
        except _Stopping:
            return STOPPED
        except _Killed:
            return _KILLED

    def _play_stream(self, rec: Recorded, reply: Reply, client_wants_close: bool) -> str:
        framing = {"Transfer-Encoding": "chunked"} if reply.chunked else {"Connection": "close"}
        if reply.chunked and client_wants_close:
            framing["Connection"] = "close"
        head: bytes | None = self._head(reply.status, reply.content_type, framing, reply.headers)
        origin = time.monotonic()
        for ev in reply.events:
            if isinstance(ev, Send):
                if self._client_gone(0):
                    raise _ClientLeft
                data = ev.data
                if not data:
                    if head is not None:
                        self._write(head)
                        head = None
                    continue
                prefix = head or b""
                head = None
                # Recorded before the write: a fast client may read it, finish, and be
                # checked against `rec.sent` before this thread runs again.
                rec.sent.append((time.monotonic(), data))
                try:
                    if not reply.chunked:
                        self._write(prefix + data)
                    elif len(data) > 65536:
                        self._write(prefix + b"%x\r\n" % len(data))
                        self._write(data)
                        self._write(b"\r\n")
                    else:
                        self._write(prefix + b"%x\r\n" % len(data) + data + b"\r\n")
                except (_ClientLeft, _Stopping, _Killed):
                    rec.sent.pop()  # only this thread appends: the entry is last
                    raise
            elif isinstance(ev, Burst):
                if head is not None:
                    self._write(head)
                    head = None
                self._burst(rec, ev, chunked=reply.chunked)
            elif isinstance(ev, Stall):
                self._idle(ev.seconds)
                return DROPPED
            elif isinstance(ev, Drop):
                return DROPPED
            else:
                origin = self._pause(ev, origin)
        end = b"0\r\n\r\n" if reply.chunked else b""
        outcome = DONE if reply.chunked and not client_wants_close else CLOSED
        # Ended before the last write, as `sent` is recorded: a client that has read the
        # whole reply finds it finished and counted.
        rec.finished_at = time.monotonic()
        self._ended(reply, outcome)
        try:
            self._write((head or b"") + end)
        except (_ClientLeft, _Stopping, _Killed):
            rec.finished_at = None
            raise
        return outcome

    def _burst(self, rec: Recorded, burst: Burst, *, chunked: bool) -> None:
        """Write a Burst: as many whole chunks a write as fit in _BURST_WRITE."""
        per_chunk = max(1, burst.per_chunk)
        full, rest = divmod(burst.count, per_chunk)
        block = burst.line * per_chunk
        wire = b"%x\r\n%s\r\n" % (len(block), block) if chunked else block
        group = max(1, min(full, _BURST_WRITE // len(wire)))
        for times, chunks in ((full // group, group), (1, full % group)):
            for _ in range(times if chunks else 0):
                self._send_burst(rec, wire * chunks, block * chunks)
        if rest:
            tail = burst.line * rest
            self._send_burst(rec, b"%x\r\n%s\r\n" % (len(tail), tail) if chunked else tail, tail)

    def _send_burst(self, rec: Recorded, wire: bytes, payload: bytes) -> None:
        if self._client_gone(0):
            raise _ClientLeft
        rec.sent.append((time.monotonic(), payload))  # before the write, as in _play_stream
        try:
            self._write(wire)
        except (_ClientLeft, _Stopping, _Killed):
            rec.sent.pop()
            raise

    def _play_whole(self, rec: Recorded, reply: Reply, client_wants_close: bool) -> str:
        total = b"".join(_payload(ev) for ev in reply.events if isinstance(ev, (Send, Burst)))
        framing = {"Content-Length": str(len(total))}
        if client_wants_close:
            framing["Connection"] = "close"
        head = self._head(reply.status, reply.content_type, framing, reply.headers)
        parts: list[bytes] = []
        dropped = False
        origin = time.monotonic()
        for ev in reply.events:
            if isinstance(ev, (Send, Burst)):
                parts.append(_payload(ev))
            elif isinstance(ev, (Stall, Drop)):
                if isinstance(ev, Stall):
                    self._idle(ev.seconds)
                dropped = True
                break
            else:
                origin = self._pause(ev, origin)
        if dropped and not parts:
            return DROPPED
        body = b"".join(parts)
        if self._client_gone(0):
            raise _ClientLeft
        rec.sent.append((time.monotonic(), body))  # before the write, as in _play_stream
        if not dropped:
            rec.finished_at = time.monotonic()
            self._ended(reply, CLOSED if client_wants_close else DONE)
        try:
            self._write(head if self.command == "HEAD" else head + body)
        except (_ClientLeft, _Stopping, _Killed):
            rec.sent.pop()
            rec.finished_at = None
            raise
        if dropped:
            return DROPPED
        return CLOSED if client_wants_close else DONE


def _payload(ev: Send | Burst) -> bytes:
    """The bytes an event sends, without HTTP framing."""
    return ev.data if isinstance(ev, Send) else ev.line * ev.count

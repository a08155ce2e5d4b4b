"""A faithful fake Ollama server for the test suite and the benchmark (stdlib only).

It speaks Ollama's HTTP API at the byte level: NDJSON lines encoded like Go's
``json.Marshal`` (compact, raw UTF-8, ``<>&`` escaped), chunked transfer encoding
with one HTTP chunk per :class:`Send`, written at once with Nagle disabled, and
status headers written lazily with the first byte of the body, as Ollama does
(so a model that "loads" for a long time sends nothing at all, not even headers).

Use it scripted (``server.script(Reply(...))``) or let the request pick a canned
behaviour. Unscripted, /api/generate and /api/chat echo ``"echo: " + prompt`` (or the
last message), one word per line and chunk; the model name (before any ``:tag``)
picks a behaviour, tuned by ``options.fake_*``:

    missing, old-missing (404), busy (503), busy-once (503 once per server),
    boom (500), html (502 text/html), slow (fake_delay=0.05 between lines),
    error-mid (2 tokens, {"error"} line, clean end), drop (2 tokens, no terminator),
    truncated (2 tokens, clean end, no done), stall (fake_tokens_before=0 lines,
    then silence for fake_stall=60 s, then drop; with 0 lines not even headers),
    notjson, huge (fake_size=50_000_000 bytes of "x" in one line), split-utf8
    (SPLIT_UTF8_TEXT in 1-byte chunks), multi (all lines in one chunk), close
    (close-delimited body), think (THINK_TEXT as thinking first), tools (chat:
    TOOL_CALLS), done-text (last words only in the done line), control
    (CONTROL_TEXT), burst (fake_tokens=1000 "tok " lines, 64 per chunk), paced
    (fake_tokens=60 lines, fake_delay=0.005 apart).

An empty prompt / no messages answers the load-only object; ``"stream": false``
answers one JSON object. Also GET /, /api/tags, /api/version, /api/ps; POST
/api/pull (NDJSON), /api/show, /api/embed, /api/embeddings, /api/copy; DELETE
/api/delete. Anything else: 404 ``404 page not found`` (text/plain), like Gin.

Standalone: ``python -m tests.fake_ollama [--port N]`` prints its URL and serves
until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import select
import signal
import socket
import socketserver
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, TypeAlias, cast
from urllib.parse import urlsplit

__all__ = [
    "CONTROL_TEXT",
    "ECHO_PREFIX",
    "ERROR_MID_MESSAGE",
    "SPLIT_UTF8_TEXT",
    "THINK_TEXT",
    "TOOL_CALLS",
    "Burst",
    "Drop",
    "Event",
    "FakeOllama",
    "Recorded",
    "Reply",
    "Send",
    "Sleep",
    "Stall",
    "Wait",
    "chat_chunks",
    "error_reply",
    "gen_chunks",
    "go_json",
    "json_reply",
    "metrics",
    "ndjson",
    "text_reply",
    "tokenize",
]

# --------------------------------------------------------------------------- constants

ECHO_PREFIX = "echo: "
THINK_TEXT = "Let me think."
SPLIT_UTF8_TEXT = "héllo wörld ✓ 🎉"
CONTROL_TEXT = "safe \x1b]0;pwned\x07title \x1b[2Jcleared \x9b31mred end"
ERROR_MID_MESSAGE = "an error was encountered while running the model"
TOOL_CALLS: list[dict[str, Any]] = [
    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
]
HTML_502 = "<html><body><h1>502 Bad Gateway</h1></body></html>"
CONTEXT = [1, 2, 3]
FEW_TOKENS = 2  # tokens sent before error-mid / drop / truncated misbehave
BURST_BATCH = 64  # lines per HTTP chunk for the `burst` model, unless fake_batch says
_BURST_WRITE = 1 << 16  # bytes per write of a Burst

_POLL = 0.01  # seconds between checks for a departed client
_JSON_CT = "application/json; charset=utf-8"
_NDJSON_CT = "application/x-ndjson"


# --------------------------------------------------------------------------- events


@dataclass
class Send:
    """One HTTP chunk (never re-framed). ``Send(b"")`` only forces the headers out."""

    data: bytes


@dataclass
class Sleep:
    """Pause, watching for the client leaving."""

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


@dataclass
class Burst:
    """``count`` copies of ``line``, ``per_chunk`` to an HTTP chunk, written as fast as
    the socket takes them: many chunks per write, so the server outruns any client and
    a million lines cost no memory. ``Recorded.sent`` gets one entry per write."""

    line: bytes
    count: int
    per_chunk: int = 1


Event: TypeAlias = Send | Burst | Sleep | Wait | Drop | Stall


@dataclass
class Reply:
    """A scripted answer.

    ``chunked=False``: close-delimited body (no Content-Length, ``Connection: close``).
    ``content_length=True``: the whole body at once with a Content-Length, after all
    the Sleep/Wait events; a Drop then sends the headers (declaring the length of
    *all* Sends) plus the data sent before it, or nothing if no Send came before it.
    """

    status: int = 200
    content_type: str = _NDJSON_CT
    events: list[Event] = field(default_factory=list)
    chunked: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    content_length: bool = False


@dataclass(eq=False)
class Recorded:
    """One request as the server saw it, and what happened to its reply."""

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


# --------------------------------------------------------------------------- encoding helpers


def go_json(obj: Any) -> bytes:
    """Encode like Go's json.Marshal: compact, raw UTF-8, HTML characters escaped."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        if ch in text:
            text = text.replace(ch, esc)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: fall back to \u escapes
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


def ndjson(*objs: Any) -> bytes:
    """One compact JSON line (ending in ``\\n``) per object."""
    return b"".join(go_json(obj) + b"\n" for obj in objs)


def created_at() -> str:
    """Current UTC time in Go's RFC 3339 nano format."""
    secs, nanos = divmod(time.time_ns(), 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    frac = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{stamp}{frac}Z"


def metrics(eval_count: int) -> dict[str, int]:
    """The done-line metrics; eval rate is always 50 tokens/s."""
    load, prompt_eval, evals = 10_000_000, 50_000_000, max(eval_count, 1) * 20_000_000
    return {
        "total_duration": load + prompt_eval + evals + 1_000_000,
        "load_duration": load,
        "prompt_eval_count": 10,
        "prompt_eval_duration": prompt_eval,
        "eval_count": eval_count,
        "eval_duration": evals,
    }


def tokenize(text: str) -> list[str]:
    """Split into words keeping the leading spaces: "a b" -> ["a", " b"]; joins back exactly."""
    tokens: list[str] = re.findall(r"\s*\S+", text)
    rest = text[sum(map(len, tokens)) :]
    if rest:
        tokens.append(rest)
    return tokens


def _paced(lines: Iterable[bytes], delay: float) -> list[Event]:
    events: list[Event] = []
    for i, line in enumerate(lines):
        if i and delay > 0:
            events.append(Sleep(delay))
        events.append(Send(line))
    return events


def _gen_line(model: str, response: str, thinking: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"model": model, "created_at": created_at(), "response": response}
    if thinking is not None:
        obj["thinking"] = thinking
    obj["done"] = False
    return obj


def _message(
    content: str,
    thinking: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        msg["thinking"] = thinking
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return msg


def _chat_line(model: str, message: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, "created_at": created_at(), "message": message, "done": False}


def _gen_lines(
    tokens: list[str],
    *,
    model: str,
    thinking: list[str] | None,
    done_text: str,
    done_extra: dict[str, Any] | None,
) -> list[bytes]:
    lines = [ndjson(_gen_line(model, "", t)) for t in thinking or []]
    lines += [ndjson(_gen_line(model, t)) for t in tokens]
    final: dict[str, Any] = {
        "model": model,
        "created_at": created_at(),
        "response": done_text,
        "done": True,
        "done_reason": "stop",
        "context": CONTEXT,
        **metrics(len(tokens)),
    }
    final.update(done_extra or {})
    lines.append(ndjson(final))
    return lines


def _chat_lines(
    tokens: list[str],
    *,
    model: str,
    thinking: list[str] | None,
    tool_calls: list[dict[str, Any]] | None,
    done_text: str,
    done_extra: dict[str, Any] | None,
) -> list[bytes]:
    lines = [ndjson(_chat_line(model, _message("", thinking=t))) for t in thinking or []]
    lines += [ndjson(_chat_line(model, _message(t))) for t in tokens]
    if tool_calls:
        lines.append(ndjson(_chat_line(model, _message("", tool_calls=tool_calls))))
    final: dict[str, Any] = {
        "model": model,
        "created_at": created_at(),
        "message": _message(done_text),
        "done": True,
        "done_reason": "stop",
        **metrics(len(tokens)),
    }
    final.update(done_extra or {})
    lines.append(ndjson(final))
    return lines


def gen_chunks(
    tokens: list[str],
    *,
    model: str = "m",
    thinking: list[str] | None = None,
    done_text: str = "",
    done_extra: dict[str, Any] | None = None,
    delay: float = 0.0,
) -> list[Event]:
    """/api/generate stream: thinking lines, one line per token, then the done line.

    Each line is its own Send; ``delay`` > 0 puts a Sleep between lines."""
    lines = _gen_lines(
        tokens, model=model, thinking=thinking, done_text=done_text, done_extra=done_extra
    )
    return _paced(lines, delay)


def chat_chunks(
    tokens: list[str],
    *,
    model: str = "m",
    thinking: list[str] | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    done_text: str = "",
    done_extra: dict[str, Any] | None = None,
    delay: float = 0.0,
) -> list[Event]:
    """/api/chat stream: thinking lines, token lines, a tool_calls line, the done line."""
    lines = _chat_lines(
        tokens,
        model=model,
        thinking=thinking,
        tool_calls=tool_calls,
        done_text=done_text,
        done_extra=done_extra,
    )
    return _paced(lines, delay)


def json_reply(obj: Any, status: int = 200) -> Reply:
    """A plain JSON answer with a Content-Length, as Gin's c.JSON sends it."""
    return Reply(
        status=status, content_type=_JSON_CT, events=[Send(go_json(obj))], content_length=True
    )


def error_reply(status: int, message: str) -> Reply:
    """``{"error": message}`` with the given status."""
    return json_reply({"error": message}, status)


def text_reply(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Reply:
    """A non-JSON answer (proxies, unknown paths)."""
    return Reply(
        status=status, content_type=content_type, events=[Send(text.encode())], content_length=True
    )


def _empty_reply(status: int = 200) -> Reply:
    return Reply(status=status, content_type="", events=[], content_length=True)


# --------------------------------------------------------------------------- request helpers


def _json_error(body: bytes) -> str:
    """A Go-like message for a body json.loads refuses."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid character in string literal"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            return "unexpected EOF"
        where = "looking for beginning of value"
        if exc.msg.startswith("Expecting property name"):
            where = "looking for beginning of object key string"
        elif exc.msg.startswith("Extra data"):
            where = "after top-level value"
        elif exc.msg.startswith("Expecting ',' delimiter"):
            where = "after object key:value pair"
        return f"invalid character '{text[exc.pos]}' {where}"
    return "invalid JSON"


def _opt_float(opts: dict[str, Any], key: str, default: float) -> float:
    try:
        return float(opts.get(key, default))
    except (TypeError, ValueError):
        return default


def _opt_int(opts: dict[str, Any], key: str, default: int) -> int:
    try:
        return int(opts.get(key, default))
    except (TypeError, ValueError):
        return default


def _behaviour(model: str) -> str:
    return model.rsplit("/", 1)[-1].split(":", 1)[0]


# --------------------------------------------------------------------------- server


class _ClientLeft(Exception):
    pass


class _Stopping(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() shuts connections down and joins with a timeout

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


_DONE, _LEFT, _DROPPED, _STOPPED, _CLOSED = "done", "left", "dropped", "stopped", "closed"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    @property
    def fake(self) -> FakeOllama:
        return cast(_Server, self.server).fake

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
        body = self._read_body()
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
        rec = Recorded(
            method=self.command,
            path=split.path,
            query=split.query,
            headers=headers,
            body=body,
            json=parsed,
            received_at=time.monotonic(),
        )
        fake._record(rec)
        reply = fake._take_script(rec.path)
        if reply is None:
            reply = fake._default_reply(rec)
        client_wants_close = self.close_connection
        outcome = self._play(rec, reply, client_wants_close)
        self.close_connection = True
        if outcome == _LEFT:
            self._mark_left(rec)
        elif outcome == _CLOSED:
            # Close-delimited body or `Connection: close`: half-close, then wait for the
            # client to close its side so `left` means the same thing everywhere.
            try:
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                return
            if self._watch_idle() == _LEFT:
                self._mark_left(rec)
        elif outcome == _DONE:
            state = self._watch_idle()
            if state == _LEFT:
                self._mark_left(rec)
            elif state == _DONE:  # the client sent its next request: keep-alive
                self.close_connection = False

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

    def _idle(self, seconds: float, event: threading.Event | None = None) -> None:
        stopping = self.fake._stopping
        deadline = time.monotonic() + seconds
        while True:
            if event is not None and event.is_set():
                return
            if stopping.is_set():
                raise _Stopping
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._client_gone(min(_POLL, remaining)):
                raise _Stopping if stopping.is_set() else _ClientLeft

    def _watch_idle(self) -> str:
        """After a reply: wait for the client to close (_LEFT), to send another request
        (_DONE), for the server to stop or for the idle timeout (_STOPPED)."""
        fake = self.fake
        deadline = time.monotonic() + fake.idle_timeout
        sock = self.connection
        while time.monotonic() < deadline and not fake._stopping.is_set():
            try:
                readable, _, _ = select.select([sock], [], [], 0.05)
            except (OSError, ValueError):
                return _STOPPED
            if fake._stopping.is_set():
                return _STOPPED
            if not readable:
                continue
            try:
                data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError:
                return _LEFT
            return _DONE if data else _LEFT
        return _STOPPED

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            raise _Stopping if self.fake._stopping.is_set() else _ClientLeft from None

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
            return _LEFT
        except _Stopping:
            return _STOPPED

    def _play_stream(self, rec: Recorded, reply: Reply, client_wants_close: bool) -> str:
        framing = {"Transfer-Encoding": "chunked"} if reply.chunked else {"Connection": "close"}
        if reply.chunked and client_wants_close:
            framing["Connection"] = "close"
        head: bytes | None = self._head(reply.status, reply.content_type, framing, reply.headers)
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
                entry = (time.monotonic(), data)
                rec.sent.append(entry)
                try:
                    if not reply.chunked:
                        self._write(prefix + data)
                    elif len(data) > 65536:
                        self._write(prefix + b"%x\r\n" % len(data))
                        self._write(data)
                        self._write(b"\r\n")
                    else:
                        self._write(prefix + b"%x\r\n" % len(data) + data + b"\r\n")
                except (_ClientLeft, _Stopping):
                    rec.sent.pop()  # only this thread appends: the entry is last
                    raise
            elif isinstance(ev, Burst):
                if head is not None:
                    self._write(head)
                    head = None
                self._burst(rec, ev, chunked=reply.chunked)
            elif isinstance(ev, Sleep):
                self._idle(ev.seconds)
            elif isinstance(ev, Wait):
                self._idle(ev.timeout, ev.event)
            elif isinstance(ev, Stall):
                self._idle(ev.seconds)
                return _DROPPED
            else:  # Drop
                return _DROPPED
        end = b"0\r\n\r\n" if reply.chunked else b""
        self._write((head or b"") + end)
        rec.finished_at = time.monotonic()
        return _DONE if reply.chunked and not client_wants_close else _CLOSED

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
        except (_ClientLeft, _Stopping):
            rec.sent.pop()
            raise

    def _play_whole(self, rec: Recorded, reply: Reply, client_wants_close: bool) -> str:
        total = b"".join(
            ev.data if isinstance(ev, Send) else ev.line * ev.count
            for ev in reply.events
            if isinstance(ev, (Send, Burst))
        )
        framing = {"Content-Length": str(len(total))}
        if client_wants_close:
            framing["Connection"] = "close"
        head = self._head(reply.status, reply.content_type, framing, reply.headers)
        parts: list[bytes] = []
        dropped = False
        for ev in reply.events:
            if isinstance(ev, Send):
                parts.append(ev.data)
            elif isinstance(ev, Burst):
                parts.append(ev.line * ev.count)
            elif isinstance(ev, Sleep):
                self._idle(ev.seconds)
            elif isinstance(ev, Wait):
                self._idle(ev.timeout, ev.event)
            else:  # Stall or Drop
                if isinstance(ev, Stall):
                    self._idle(ev.seconds)
                dropped = True
                break
        if dropped and not parts:
            return _DROPPED
        body = b"".join(parts)
        if self._client_gone(0):
            raise _ClientLeft
        entry = (time.monotonic(), body)
        rec.sent.append(entry)  # before the write, as in _play_stream
        try:
            self._write(head if self.command == "HEAD" else head + body)
        except (_ClientLeft, _Stopping):
            rec.sent.pop()
            raise
        if dropped:
            return _DROPPED
        rec.finished_at = time.monotonic()
        return _CLOSED if client_wants_close else _DONE


# --------------------------------------------------------------------------- the public server


class FakeOllama:
    """A fake Ollama on 127.0.0.1 (daemon threads). Use as a context manager."""

    def __init__(self, port: int = 0, *, host: str = "127.0.0.1", idle_timeout: float = 30.0):
        self.host = host
        self._port = port
        self.idle_timeout = idle_timeout
        self.requests: list[Recorded] = []
        self._cond = threading.Condition()
        self._scripts: dict[str | None, deque[Reply]] = {}
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()
        self._busy_once_done = False

    # ---- lifecycle

    def start(self) -> FakeOllama:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self._port), self)
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"fake-ollama:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._conns_lock:
            conns = dict(self._conns)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(2)
        deadline = time.monotonic() + 2
        for thread in conns.values():
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    # ---- scripting and inspection

    def script(self, reply: Reply, path: str | None = "/api/generate") -> None:
        """Queue `reply` for the next request to `path` (FIFO per path; None = any path).

        A queue for the exact path is used before the any-path queue."""
        with self._cond:
            self._scripts.setdefault(path, deque()).append(reply)

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[Recorded]:
        """Block until at least `n` requests arrived; return the first `n`."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= n, timeout):
                raise TimeoutError(
                    f"{len(self.requests)} request(s) arrived within {timeout}s, wanted {n}"
                )
            return self.requests[:n]

    def wait_for_request(self, timeout: float = 5.0) -> Recorded:
        """Block until a request arrived; return the first one."""
        return self.wait_for_requests(1, timeout)[0]

    # ---- used by the handler

    def _register(self, sock: socket.socket) -> None:
        with self._conns_lock:
            self._conns[sock] = threading.current_thread()

    def _unregister(self, sock: socket.socket) -> None:
        with self._conns_lock:
            self._conns.pop(sock, None)

    def _record(self, rec: Recorded) -> None:
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()

    def _take_script(self, path: str) -> Reply | None:
        with self._cond:
            for key in (path, None):
                queue = self._scripts.get(key)
                if queue:
                    return queue.popleft()
        return None

    # ---- default behaviour

    def _default_reply(self, rec: Recorded) -> Reply:
        routes: dict[tuple[str, str], Callable[[Recorded], Reply]] = {
            ("POST", "/api/generate"): self._generate,
            ("POST", "/api/chat"): self._chat,
            ("GET", "/api/tags"): lambda r: json_reply(_TAGS),
            ("GET", "/api/version"): lambda r: json_reply({"version": "0.12.0"}),
            ("HEAD", "/api/version"): lambda r: json_reply({"version": "0.12.0"}),
            ("GET", "/api/ps"): lambda r: json_reply({"models": []}),
            ("POST", "/api/pull"): self._pull,
            ("POST", "/api/show"): self._show,
            ("POST", "/api/embed"): self._embed,
            ("POST", "/api/embeddings"): self._embeddings,
            ("POST", "/api/copy"): self._copy,
            ("DELETE", "/api/delete"): self._delete,
            ("GET", "/"): lambda r: text_reply(200, "Ollama is running"),
            ("HEAD", "/"): lambda r: text_reply(200, "Ollama is running"),
        }
        route = routes.get((rec.method, rec.path))
        if route is None:
            return text_reply(404, "404 page not found", "text/plain")
        return route(rec)

    def _named_request(
        self, rec: Recorded, go_type: str, *, name_too: bool = False, loads_model: bool = False
    ) -> tuple[dict[str, Any], str] | Reply:
        """The request object and its model, or the error Ollama answers: 400 without a
        model, and with `loads_model` the scripted model errors (404, 503, 500...).
        `name_too`: the endpoints that still take the older `name` field."""
        req = self._request_object(rec, go_type)
        if isinstance(req, Reply):
            return req
        model = req.get("model") or (req.get("name") if name_too else None)
        if not isinstance(model, str) or not model:
            return error_reply(400, "model is required")
        if loads_model:
            error = self._model_error(model)
            if error is not None:
                return error
        return req, model

    def _request_object(self, rec: Recorded, go_type: str) -> dict[str, Any] | Reply:
        if not rec.body.strip():
            return error_reply(400, "missing request body")
        if rec.json is None and rec.body.strip() != b"null":
            return error_reply(400, _json_error(rec.body))
        if not isinstance(rec.json, dict):
            kind = {list: "array", str: "string", bool: "bool", type(None): "null"}.get(
                type(rec.json), "number"
            )
            return error_reply(
                400, f"json: cannot unmarshal {kind} into Go value of type {go_type}"
            )
        return rec.json

    def _model_error(self, model: str) -> Reply | None:
        beh = _behaviour(model)
        if beh == "missing":
            return error_reply(404, f"model '{model}' not found")
        if beh == "old-missing":
            return error_reply(404, f'model "{model}" not found, try pulling it first')
        if beh == "busy":
            return error_reply(503, "server busy, please try again.")
        if beh == "busy-once":
            with self._cond:
                first, self._busy_once_done = not self._busy_once_done, True
            if first:
                return error_reply(503, "server busy, please try again.")
        if beh == "boom":
            return error_reply(500, "llama runner process has terminated")
        if beh == "html":
            return text_reply(502, HTML_502, "text/html")
        return None

    def _generate(self, rec: Recorded) -> Reply:
        return self._completion(rec, "generate")

    def _chat(self, rec: Recorded) -> Reply:
        return self._completion(rec, "chat")

    def _completion(self, rec: Recorded, kind: str) -> Reply:
        got = self._named_request(
            rec,
            "api.GenerateRequest" if kind == "generate" else "api.ChatRequest",
            loads_model=True,
        )
        if isinstance(got, Reply):
            return got
        req, model = got
        beh = _behaviour(model)
        opts = req.get("options")
        opts = opts if isinstance(opts, dict) else {}
        stream = req.get("stream", True) is not False

        if kind == "generate":
            prompt = req.get("prompt")
            text = prompt if isinstance(prompt, str) else ""
            empty = not text
        else:
            messages = req.get("messages")
            empty = not isinstance(messages, list) or not messages
            last = messages[-1] if not empty and isinstance(messages, list) else None
            content = last.get("content") if isinstance(last, dict) else None
            text = content if isinstance(content, str) else ""

        tokens = tokenize(ECHO_PREFIX + text)
        if beh == "stall":
            before = _opt_int(opts, "fake_tokens_before", 0)
            stall = Stall(_opt_float(opts, "fake_stall", 60.0))
            if not stream:
                return Reply(content_type=_JSON_CT, events=[stall], content_length=True)
            tokens = (tokens + ["tok "] * before)[:before]
            lines = self._lines(kind, model, tokens)[:-1]
            return Reply(events=[*_paced(lines, 0), stall])
        if empty:
            return json_reply(self._load_object(kind, model))

        thinking: list[str] = []
        tool_calls: list[dict[str, Any]] | None = None
        done_text = ""
        if beh == "think":
            thinking = tokenize(THINK_TEXT)
        elif beh == "tools" and kind == "chat":
            tokens, tool_calls = [], TOOL_CALLS
        elif beh == "split-utf8":
            tokens = tokenize(SPLIT_UTF8_TEXT)
        elif beh == "control":
            tokens = tokenize(CONTROL_TEXT)
        elif beh == "done-text":
            k = 2 if len(tokens) > 2 else 1
            tokens, done_text = tokens[:-k], "".join(tokens[-k:])
        elif beh == "burst" and stream:
            count = _opt_int(opts, "fake_tokens", 1000)
            line, done = self._lines(kind, model, ["tok "], done_extra=metrics(count))
            batch = _opt_int(opts, "fake_batch", BURST_BATCH)
            return Reply(events=[Burst(line, count, batch), Send(done)])
        elif beh == "burst":
            tokens = ["tok "] * _opt_int(opts, "fake_tokens", 1000)
        elif beh == "paced":
            tokens = ["tok "] * _opt_int(opts, "fake_tokens", 60)
        elif beh == "huge":
            tokens = ["x" * _opt_int(opts, "fake_size", 50_000_000)]

        delay = 0.0
        if beh == "slow":
            delay = _opt_float(opts, "fake_delay", 0.05)
        elif beh == "paced":
            delay = _opt_float(opts, "fake_delay", 0.005)

        if not stream:
            return self._whole(kind, model, beh, tokens, thinking, tool_calls, done_text, delay)

        lines = self._lines(kind, model, tokens, thinking, tool_calls, done_text)
        body = lines[:-1]
        few = body[: len(thinking) + FEW_TOKENS]
        events: list[Event]
        if beh == "error-mid":
            events = _paced([*few, ndjson({"error": ERROR_MID_MESSAGE})], 0)
        elif beh == "drop":
            events = [*_paced(few, 0), Drop()]
        elif beh == "truncated":
            events = _paced(few, 0)
        elif beh == "notjson":
            events = _paced([*lines[:1], b"this is not json\n", *lines[1:]], 0)
        elif beh == "split-utf8":
            data = b"".join(lines)
            events = [Send(data[i : i + 1]) for i in range(len(data))]
        elif beh == "multi":
            events = [Send(b"".join(lines))]
        else:
            events = _paced(lines, delay)
        return Reply(events=events, chunked=beh != "close")

    @staticmethod
    def _lines(
        kind: str,
        model: str,
        tokens: list[str],
        thinking: list[str] | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        done_text: str = "",
        done_extra: dict[str, Any] | None = None,
    ) -> list[bytes]:
        if kind == "generate":
            return _gen_lines(
                tokens, model=model, thinking=thinking, done_text=done_text, done_extra=done_extra
            )
        return _chat_lines(
            tokens,
            model=model,
            thinking=thinking,
            tool_calls=tool_calls,
            done_text=done_text,
            done_extra=done_extra,
        )

    @staticmethod
    def _load_object(kind: str, model: str) -> dict[str, Any]:
        if kind == "generate":
            return {
                "model": model,
                "created_at": created_at(),
                "response": "",
                "done": True,
                "done_reason": "load",
            }
        return {
            "model": model,
            "created_at": created_at(),
            "message": _message(""),
            "done": True,
            "done_reason": "load",
        }

    @staticmethod
    def _whole(
        kind: str,
        model: str,
        beh: str,
        tokens: list[str],
        thinking: list[str],
        tool_calls: list[dict[str, Any]] | None,
        done_text: str,
        delay: float,
    ) -> Reply:
        """The `"stream": false` answer: one JSON object."""
        full = "".join(tokens) + done_text
        think = "".join(thinking) or None
        obj: dict[str, Any]
        if kind == "generate":
            obj = {"model": model, "created_at": created_at(), "response": full}
            if think:
                obj["thinking"] = think
            obj.update(done=True, done_reason="stop", context=CONTEXT, **metrics(len(tokens)))
        else:
            obj = {
                "model": model,
                "created_at": created_at(),
                "message": _message(full, think, tool_calls),
                "done": True,
                "done_reason": "stop",
                **metrics(len(tokens)),
            }
        body = go_json(obj)
        if beh == "error-mid":
            return error_reply(500, ERROR_MID_MESSAGE)
        if beh == "drop":
            return Reply(content_type=_JSON_CT, events=[Drop()], content_length=True)
        if beh == "truncated":
            half = len(body) // 2
            return Reply(
                content_type=_JSON_CT,
                content_length=True,
                events=[Send(body[:half]), Drop(), Send(body[half:])],
            )
        if beh == "close":
            return Reply(content_type=_JSON_CT, events=[Send(body)], chunked=False)
        if delay > 0:
            return Reply(
                content_type=_JSON_CT,
                content_length=True,
                events=[Sleep(delay * len(tokens)), Send(body)],
            )
        return json_reply(obj)

    def _pull(self, rec: Recorded) -> Reply:
        got = self._named_request(rec, "api.PullRequest", name_too=True)
        if isinstance(got, Reply):
            return got
        req, model = got
        stream = req.get("stream", True) is not False
        if _behaviour(model) == "missing":
            if not stream:
                return error_reply(500, "pull model manifest: file does not exist")
            return Reply(
                events=_paced(
                    [
                        ndjson({"status": "pulling manifest"}),
                        ndjson({"error": "pull model manifest: file does not exist"}),
                    ],
                    0,
                )
            )
        if not stream:
            return json_reply({"status": "success"})
        digest = "sha256:abc"
        statuses: list[dict[str, Any]] = [
            {"status": "pulling manifest"},
            {"status": "pulling abc", "digest": digest, "total": 100},
            {"status": "pulling abc", "digest": digest, "total": 100, "completed": 50},
            {"status": "pulling abc", "digest": digest, "total": 100, "completed": 100},
            {"status": "verifying sha256 digest"},
            {"status": "writing manifest"},
            {"status": "success"},
        ]
        return Reply(events=_paced([ndjson(s) for s in statuses], 0))

    def _show(self, rec: Recorded) -> Reply:
        got = self._named_request(rec, "api.ShowRequest", name_too=True)
        if isinstance(got, Reply):
            return got
        _req, model = got
        if _behaviour(model) in ("missing", "old-missing"):
            return error_reply(404, f"model '{model}' not found")
        capabilities = ["completion"]
        if _behaviour(model) == "think":
            capabilities.append("thinking")
        if _behaviour(model) == "tools":
            capabilities.append("tools")
        return json_reply(
            {
                "license": "",
                "modelfile": f'# Modelfile generated by "ollama show"\nFROM {model}\n',
                "parameters": 'stop "<|eot_id|>"',
                "template": "{{ .Prompt }}",
                "details": dict(_DETAILS),
                "model_info": {
                    "general.architecture": "llama",
                    "general.parameter_count": 8030261248,
                },
                "capabilities": capabilities,
                "modified_at": "2025-01-01T00:00:00Z",
            }
        )

    def _embed(self, rec: Recorded) -> Reply:
        got = self._named_request(rec, "api.EmbedRequest", loads_model=True)
        if isinstance(got, Reply):
            return got
        req, model = got
        inputs = req.get("input")
        count = len(inputs) if isinstance(inputs, list) else 1
        return json_reply(
            {
                "model": model,
                "embeddings": [[0.1, 0.2, 0.3] for _ in range(count)],
                "total_duration": 14_143_917,
                "load_duration": 1_019_500,
                "prompt_eval_count": 8 * count,
            }
        )

    def _embeddings(self, rec: Recorded) -> Reply:
        got = self._named_request(rec, "api.EmbeddingRequest", loads_model=True)
        return got if isinstance(got, Reply) else json_reply({"embedding": [0.1, 0.2, 0.3]})

    def _copy(self, rec: Recorded) -> Reply:
        req = self._request_object(rec, "api.CopyRequest")
        if isinstance(req, Reply):
            return req
        source = req.get("source")
        if isinstance(source, str) and _behaviour(source) == "missing":
            return error_reply(404, f"model '{source}' not found")
        return _empty_reply()

    def _delete(self, rec: Recorded) -> Reply:
        got = self._named_request(rec, "api.DeleteRequest", name_too=True)
        if isinstance(got, Reply):
            return got
        _req, model = got
        if _behaviour(model) == "missing":
            return error_reply(404, f"model '{model}' not found")
        return _empty_reply()


_DETAILS: dict[str, Any] = {
    "parent_model": "",
    "format": "gguf",
    "family": "llama",
    "families": ["llama"],
    "parameter_size": "8.0B",
    "quantization_level": "Q4_K_M",
}
_TAGS: dict[str, Any] = {
    "models": [
        {
            "name": "llama3.1:latest",
            "model": "llama3.1:latest",
            "modified_at": "2025-01-01T00:00:00Z",
            "size": 4920753328,
            "digest": "46e0c10c039e019119339687c3c1757cc81b9da49709a3b3924863ba87ca666e",
            "details": _DETAILS,
        }
    ]
}


# --------------------------------------------------------------------------- standalone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_ollama",
        description="Serve a fake Ollama on 127.0.0.1 until SIGTERM/SIGINT; prints its URL.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free)")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=30.0,
        help="seconds an idle keep-alive connection is kept (default: 30)",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with FakeOllama(args.port, idle_timeout=args.idle_timeout) as server:
        with contextlib.suppress(OSError):
            print(server.url, flush=True)
        while not stop.is_set():
            stop.wait(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

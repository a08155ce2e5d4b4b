"""Tests of the fake Ollama server itself, with raw sockets and http.client only."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fake_ollama import (
    CONTROL_TEXT,
    ERROR_MID_MESSAGE,
    SPLIT_UTF8_TEXT,
    THINK_TEXT,
    TOOL_CALLS,
    Drop,
    FakeOllama,
    Reply,
    Send,
    Sleep,
    Stall,
    Wait,
    chat_chunks,
    error_reply,
    gen_chunks,
    json_reply,
    ndjson,
    text_reply,
    tokenize,
)

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- raw client


class Raw:
    """A byte-level HTTP/1.1 client: sees chunk boundaries and missing terminators."""

    def __init__(
        self, url: str, path: str = "/api/generate", body: Any = None, method: str = "POST"
    ) -> None:
        parts = urlsplit(url)
        assert parts.hostname and parts.port
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
        self.buf = b""
        data = body if isinstance(body, bytes) else json.dumps(body).encode() if body else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        if data or method == "POST":
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + data)

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def until(self, sep: bytes) -> bytes:
        while sep not in self.buf:
            assert self._fill(), f"EOF before {sep!r}; got {self.buf!r}"
        out, _, self.buf = self.buf.partition(sep)
        return out

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            assert self._fill(), "EOF"
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def head(self) -> tuple[int, dict[str, str]]:
        lines = self.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def chunk(self) -> bytes | None:
        """The next chunk's payload; None for the terminating zero-size chunk."""
        size = int(self.until(b"\r\n"), 16)
        data = self.exact(size)
        assert self.exact(2) == b"\r\n"
        return data if size else None

    def rest(self) -> bytes:
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def close(self) -> None:
        self.sock.close()


def request(
    url: str,
    method: str,
    path: str,
    body: Any = None,
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        data = body if isinstance(body, bytes) else None if body is None else json.dumps(body)
        conn.request(method, path, body=data)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def lines_of(body: bytes) -> list[Any]:
    return [json.loads(line) for line in body.split(b"\n") if line]


def generate(
    url: str,
    model: str,
    prompt: str = "hello world",
    **extra: Any,
) -> tuple[int, dict[str, str], bytes]:
    return request(url, "POST", "/api/generate", {"model": model, "prompt": prompt, **extra})


# --------------------------------------------------------------------------- framing


def test_each_send_is_its_own_chunk_flushed_at_once(fake_ollama: FakeOllama) -> None:
    gate = threading.Event()
    fake_ollama.script(Reply(events=[Send(b'{"a":1}\n'), Wait(gate, 5), Send(b'{"b":2}\n')]))
    raw = Raw(fake_ollama.url, body={"model": "m", "prompt": "x"})
    try:
        status, headers = raw.head()
        assert status == 200
        assert headers["content-type"] == "application/x-ndjson"
        assert headers["transfer-encoding"] == "chunked"
        assert "content-length" not in headers
        assert raw.chunk() == b'{"a":1}\n'  # arrives while the server waits on the gate
        assert raw.buf == b""
        gate.set()
        assert raw.chunk() == b'{"b":2}\n'
        assert raw.chunk() is None
        rec = fake_ollama.wait_for_request()
        assert [data for _, data in rec.sent] == [b'{"a":1}\n', b'{"b":2}\n']
        assert rec.sent[0][0] <= rec.sent[1][0]
        assert rec.json == {"model": "m", "prompt": "x"}
        assert rec.method == "POST" and rec.path == "/api/generate"
        assert rec.headers["content-type"] == "application/json"
    finally:
        raw.close()
    assert rec.left.wait(5)  # client closed after a complete reply
    assert rec.finished_at is not None and rec.left_at is not None
    assert rec.finished_at <= rec.left_at


def test_sends_are_never_reframed(fake_ollama: FakeOllama) -> None:
    parts = [b'{"response":"a', b'b"}\n{"resp', b'onse":"\xc3', b'\xa9"}\n']
    fake_ollama.script(Reply(events=[Send(p) for p in parts]))
    raw = Raw(fake_ollama.url, body={"model": "m", "prompt": "x"})
    try:
        raw.head()
        assert [raw.chunk() for _ in parts] == parts
        assert raw.chunk() is None
    finally:
        raw.close()


def test_headers_wait_for_the_first_send(fake_ollama: FakeOllama) -> None:
    gate = threading.Event()
    fake_ollama.script(Reply(events=[Wait(gate, 5), Send(b"{}\n")]))
    raw = Raw(fake_ollama.url, body={"model": "m", "prompt": "x"})
    try:
        fake_ollama.wait_for_request()
        raw.sock.settimeout(0.1)
        with pytest.raises(TimeoutError):
            raw.sock.recv(1)  # like Ollama loading a model: not even the status line
        raw.sock.settimeout(5)
        gate.set()
        assert raw.head()[0] == 200
        assert raw.chunk() == b"{}\n"
    finally:
        raw.close()


def test_close_delimited_body(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(Reply(events=[Send(b"one\n"), Send(b"two\n")], chunked=False))
    raw = Raw(fake_ollama.url, body={"model": "m", "prompt": "x"})
    try:
        status, headers = raw.head()
        assert status == 200
        assert headers["connection"] == "close"
        assert "transfer-encoding" not in headers and "content-length" not in headers
        assert raw.rest() == b"one\ntwo\n"
    finally:
        raw.close()
    assert fake_ollama.wait_for_request().left.wait(5)


def test_drop_ends_without_terminator(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(Reply(events=[Send(b"one\n"), Drop(), Send(b"never\n")]))
    raw = Raw(fake_ollama.url, body={"model": "m", "prompt": "x"})
    try:
        raw.head()
        assert raw.rest() == b"4\r\none\n\r\n"
    finally:
        raw.close()
    assert fake_ollama.wait_for_request().finished_at is None


def test_content_length_drop_sends_a_short_body(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(Reply(content_length=True, events=[Send(b"abc"), Drop(), Send(b"def")]))
    raw = Raw(fake_ollama.url, body={"model": "m", "prompt": "x"})
    try:
        _, headers = raw.head()
        assert headers["content-length"] == "6"
        assert raw.rest() == b"abc"
    finally:
        raw.close()


def test_script_fifo_per_path_and_any_path(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(json_reply({"n": 1}))
    fake_ollama.script(json_reply({"n": 2}))
    fake_ollama.script(text_reply(418, "teapot"), path=None)
    assert json.loads(generate(fake_ollama.url, "m")[2]) == {"n": 1}
    assert request(fake_ollama.url, "GET", "/anything")[:3:2] == (418, b"teapot")
    assert json.loads(generate(fake_ollama.url, "m")[2]) == {"n": 2}
    assert generate(fake_ollama.url, "m")[0] == 200  # back to the default echo
    assert [r.path for r in fake_ollama.wait_for_requests(4)] == [
        "/api/generate",
        "/anything",
        "/api/generate",
        "/api/generate",
    ]


def test_keep_alive_connection_serves_several_requests(fake_ollama: FakeOllama) -> None:
    parts = urlsplit(fake_ollama.url)
    assert parts.hostname and parts.port
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        for word in ("one", "two"):
            conn.request("POST", "/api/generate", json.dumps({"model": "m", "prompt": word}))
            resp = conn.getresponse()
            text = "".join(o["response"] for o in lines_of(resp.read()))
            assert text == f"echo: {word}"
    finally:
        conn.close()


# --------------------------------------------------------------------------- the client leaving


@pytest.mark.parametrize(
    "pause", [Sleep(30), Stall(30), Wait(threading.Event(), 30)], ids=["sleep", "stall", "wait"]
)
def test_client_leaving_is_noticed(fake_ollama: FakeOllama, pause: Any) -> None:
    fake_ollama.script(Reply(events=[Send(b"{}\n"), pause, Send(b"never\n")]))
    raw = Raw(fake_ollama.url, body={"model": "m", "prompt": "x"})
    raw.head()
    assert raw.chunk() == b"{}\n"
    closed = time.monotonic()
    raw.close()
    rec = fake_ollama.wait_for_request()
    assert rec.left.wait(5)
    assert rec.left_at is not None and rec.left_at >= closed
    assert rec.finished_at is None
    assert [data for _, data in rec.sent] == [b"{}\n"]


def test_client_leaving_during_a_silent_stall(fake_ollama: FakeOllama) -> None:
    raw = Raw(fake_ollama.url, body={"model": "stall", "prompt": "x"})
    rec = fake_ollama.wait_for_request()
    raw.close()
    assert rec.left.wait(5)
    assert rec.sent == []


def test_stop_does_not_wait_for_stalled_clients() -> None:
    server = FakeOllama().start()
    raw = Raw(server.url, body={"model": "stall", "prompt": "x"})
    try:
        server.wait_for_request()
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 3
        assert raw.rest() == b""
    finally:
        raw.close()


def test_wait_for_request_times_out(fake_ollama: FakeOllama) -> None:
    with pytest.raises(TimeoutError):
        fake_ollama.wait_for_request(timeout=0.05)


# --------------------------------------------------------------------------- default behaviours


def test_default_echo_stream(fake_ollama: FakeOllama) -> None:
    status, headers, body = generate(fake_ollama.url, "llama3.1:8b", "hello world")
    assert status == 200
    assert headers["content-type"] == "application/x-ndjson"
    objs = lines_of(body)
    assert [o["response"] for o in objs[:-1]] == ["echo:", " hello", " world"]
    assert all(o["model"] == "llama3.1:8b" and o["done"] is False for o in objs[:-1])
    done = objs[-1]
    assert done["done"] is True and done["done_reason"] == "stop"
    assert done["context"] == [1, 2, 3] and done["eval_count"] == 3
    for key in (
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_duration",
    ):
        assert isinstance(done[key], int)
    rec = fake_ollama.wait_for_request()
    assert len(rec.sent) == 4  # one chunk per line
    assert b"".join(d for _, d in rec.sent) == body
    assert body.endswith(b"}\n") and b": " not in body.replace(b'"echo: ', b"")


def test_default_chat_stream(fake_ollama: FakeOllama) -> None:
    messages = [{"role": "user", "content": "first"}, {"role": "user", "content": "hi there"}]
    status, _, body = request(
        fake_ollama.url, "POST", "/api/chat", {"model": "m", "messages": messages}
    )
    assert status == 200
    objs = lines_of(body)
    assert "".join(o["message"]["content"] for o in objs) == "echo: hi there"
    assert all(o["message"]["role"] == "assistant" for o in objs)
    assert objs[-1]["done"] is True and "context" not in objs[-1]


def test_go_style_json_encoding(fake_ollama: FakeOllama) -> None:
    body = generate(fake_ollama.url, "m", "é <b> & ✓")[2]
    assert "é".encode() in body and "✓".encode() in body  # raw UTF-8, like Go
    assert b"\\u003cb\\u003e" in body and b"\\u0026" in body
    assert "".join(o["response"] for o in lines_of(body)) == "echo: é <b> & ✓"


def test_stream_false_answers_one_object(fake_ollama: FakeOllama) -> None:
    status, headers, body = generate(fake_ollama.url, "m", "a b", stream=False)
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert int(headers["content-length"]) == len(body)
    obj = json.loads(body)
    assert obj["response"] == "echo: a b" and obj["done"] is True
    status, _, body = request(
        fake_ollama.url,
        "POST",
        "/api/chat",
        {"model": "think", "messages": [{"role": "user", "content": "q"}], "stream": False},
    )
    obj = json.loads(body)
    assert obj["message"]["content"] == "echo: q" and obj["message"]["thinking"] == THINK_TEXT


def test_empty_prompt_only_loads(fake_ollama: FakeOllama) -> None:
    status, headers, body = generate(fake_ollama.url, "m", "")
    assert status == 200 and "content-length" in headers
    obj = json.loads(body)
    assert obj["done"] is True and obj["done_reason"] == "load" and obj["response"] == ""
    status, _, body = request(fake_ollama.url, "POST", "/api/chat", {"model": "m", "messages": []})
    assert json.loads(body)["done_reason"] == "load"


@pytest.mark.parametrize(
    ("model", "status", "message"),
    [
        ("missing", 404, "model 'missing' not found"),
        ("missing:latest", 404, "model 'missing:latest' not found"),
        ("old-missing", 404, 'model "old-missing" not found, try pulling it first'),
        ("busy", 503, "server busy, please try again."),
        ("boom", 500, "llama runner process has terminated"),
    ],
)
def test_error_statuses(fake_ollama: FakeOllama, model: str, status: int, message: str) -> None:
    got_status, headers, body = generate(fake_ollama.url, model)
    assert got_status == status
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(body) == {"error": message}


def test_busy_once(fake_ollama: FakeOllama) -> None:
    assert generate(fake_ollama.url, "busy-once")[0] == 503
    assert generate(fake_ollama.url, "busy-once")[0] == 200


def test_html_and_unknown_path(fake_ollama: FakeOllama) -> None:
    status, headers, body = generate(fake_ollama.url, "html")
    assert status == 502 and headers["content-type"] == "text/html"
    assert body == b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    status, headers, body = request(fake_ollama.url, "GET", "/api/nope")
    assert (status, headers["content-type"], body) == (404, "text/plain", b"404 page not found")
    assert request(fake_ollama.url, "GET", "/api/generate")[0] == 404  # wrong method, like Gin


def test_bad_requests(fake_ollama: FakeOllama) -> None:
    status, _, body = request(fake_ollama.url, "POST", "/api/generate", b"{bad")
    assert status == 400 and json.loads(body)["error"].startswith("invalid character 'b'")
    status, _, body = request(fake_ollama.url, "POST", "/api/chat", {"messages": []})
    assert (status, json.loads(body)) == (400, {"error": "model is required"})


def test_split_utf8_sends_one_byte_chunks(fake_ollama: FakeOllama) -> None:
    body = generate(fake_ollama.url, "split-utf8")[2]
    rec = fake_ollama.wait_for_request()
    assert all(len(data) == 1 for _, data in rec.sent)
    assert len(rec.sent) == len(body)
    assert "".join(o["response"] for o in lines_of(body)) == SPLIT_UTF8_TEXT


def test_huge_line(fake_ollama: FakeOllama) -> None:
    body = generate(fake_ollama.url, "huge", options={"fake_size": 5000})[2]
    objs = lines_of(body)
    assert objs[0]["response"] == "x" * 5000 and objs[-1]["done"] is True
    assert len(fake_ollama.wait_for_request().sent) == 2


def test_misbehaving_streams(fake_ollama: FakeOllama) -> None:
    objs = lines_of(generate(fake_ollama.url, "error-mid")[2])
    assert objs[-1] == {"error": ERROR_MID_MESSAGE} and not any(o.get("done") for o in objs)
    objs = lines_of(generate(fake_ollama.url, "truncated")[2])
    assert objs and not any(o["done"] for o in objs)
    with pytest.raises(http.client.IncompleteRead):
        generate(fake_ollama.url, "drop")
    body = generate(fake_ollama.url, "notjson")[2]
    assert body.split(b"\n")[1] == b"this is not json"


def test_canned_models(fake_ollama: FakeOllama) -> None:
    url = fake_ollama.url
    objs = lines_of(generate(url, "think", "q")[2])
    assert "".join(o.get("thinking", "") for o in objs) == THINK_TEXT
    assert "".join(o["response"] for o in objs) == "echo: q"
    objs = lines_of(generate(url, "done-text", "a b c")[2])
    assert objs[-1]["done"] is True and objs[-1]["response"] == " b c"
    assert "".join(o["response"] for o in objs) == "echo: a b c"
    assert "".join(o["response"] for o in lines_of(generate(url, "control")[2])) == CONTROL_TEXT
    objs = lines_of(
        request(
            url,
            "POST",
            "/api/chat",
            {"model": "tools", "messages": [{"role": "user", "content": "weather?"}]},
        )[2]
    )
    assert [o["message"]["tool_calls"] for o in objs if "tool_calls" in o["message"]] == [
        TOOL_CALLS
    ]
    assert len(objs) == 2
    generate(url, "multi")
    _, headers, body = generate(url, "close")
    assert headers["connection"] == "close" and "transfer-encoding" not in headers
    assert "".join(o["response"] for o in lines_of(body)) == "echo: hello world"
    recs = fake_ollama.wait_for_requests(6)
    assert len(recs[4].sent) == 1  # multi: every line in one chunk


def test_burst_and_paced(fake_ollama: FakeOllama) -> None:
    objs = lines_of(generate(fake_ollama.url, "burst", options={"fake_tokens": 200})[2])
    assert len(objs) == 201 and objs[-1]["eval_count"] == 200
    assert b"".join(data for _, data in fake_ollama.wait_for_request().sent).count(b"\n") == 201
    objs = lines_of(
        generate(fake_ollama.url, "paced", options={"fake_tokens": 5, "fake_delay": 0.01})[2]
    )
    assert len(objs) == 6
    times = [t for t, _ in fake_ollama.wait_for_requests(2)[1].sent]
    assert len(times) == 6 and times[-1] - times[0] >= 0.04
    objs = lines_of(generate(fake_ollama.url, "slow", options={"fake_delay": 0.001})[2])
    assert "".join(o["response"] for o in objs) == "echo: hello world"


@pytest.mark.parametrize(("batch", "sizes"), [(None, [64, 64, 64, 8, 1]), (1, [1] * 201)])
def test_burst_lines_per_chunk(
    fake_ollama: FakeOllama, batch: int | None, sizes: list[int]
) -> None:
    options: dict[str, Any] = {"fake_tokens": 200}
    if batch is not None:
        options["fake_batch"] = batch
    raw = Raw(fake_ollama.url, body={"model": "burst", "prompt": "hi", "options": options})
    try:
        assert raw.head()[0] == 200
        chunks = []
        while (chunk := raw.chunk()) is not None:
            chunks.append(chunk)
    finally:
        raw.close()
    assert [c.count(b"\n") for c in chunks] == sizes
    assert all(c.endswith(b"\n") for c in chunks)
    assert json.loads(chunks[-1])["eval_count"] == 200


def test_other_endpoints(fake_ollama: FakeOllama) -> None:
    url = fake_ollama.url
    status, _, body = request(url, "GET", "/api/tags")
    assert status == 200 and json.loads(body)["models"][0]["name"] == "llama3.1:latest"
    assert json.loads(request(url, "GET", "/api/version")[2]) == {"version": "0.12.0"}
    assert json.loads(request(url, "GET", "/api/ps")[2]) == {"models": []}
    status, headers, body = request(url, "POST", "/api/pull", {"model": "llama3.1"})
    statuses = lines_of(body)
    assert headers["content-type"] == "application/x-ndjson"
    assert statuses[0] == {"status": "pulling manifest"}
    assert {
        "status": "pulling abc",
        "digest": "sha256:abc",
        "total": 100,
        "completed": 50,
    } in statuses
    assert statuses[-1] == {"status": "success"}
    assert "details" in json.loads(request(url, "POST", "/api/show", {"model": "m"})[2])
    obj = json.loads(request(url, "POST", "/api/embed", {"model": "m", "input": "x"})[2])
    assert obj["embeddings"] == [[0.1, 0.2, 0.3]]


# --------------------------------------------------------------------------- helpers


def test_helpers() -> None:
    assert tokenize("echo: hello  world\n") == ["echo:", " hello", "  world", "\n"]
    assert ndjson({"a": 1}, {"b": [1, 2]}) == b'{"a":1}\n{"b":[1,2]}\n'
    events = gen_chunks(["a", "b"], thinking=["t"], done_text="c", done_extra={"x": 1}, delay=0.5)
    sends = [e for e in events if isinstance(e, Send)]
    assert len(sends) == 4 and sum(isinstance(e, Sleep) for e in events) == 3
    objs = [json.loads(s.data) for s in sends]
    assert objs[0]["thinking"] == "t" and objs[0]["response"] == ""
    assert objs[-1]["response"] == "c" and objs[-1]["x"] == 1 and objs[-1]["eval_count"] == 2
    objs = [
        json.loads(e.data) for e in chat_chunks(["a"], tool_calls=TOOL_CALLS) if isinstance(e, Send)
    ]
    assert [o["message"].get("tool_calls") for o in objs] == [None, TOOL_CALLS, None]
    reply = error_reply(404, "nope")
    assert reply.status == 404 and reply.content_length


# --------------------------------------------------------------------------- standalone


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_standalone_prints_url_and_serves(sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_ollama"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        body = generate(url, "m", "hi")[2]
        assert "".join(o["response"] for o in lines_of(body)) == "echo: hi"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=5)
        assert (proc.returncode, out, err) == (0, "", "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

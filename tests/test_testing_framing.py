"""ostream.testing: the bytes on the wire, scripted replies, clients leaving."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from ostream.testing import (
    Burst,
    Drop,
    FakeOllama,
    Reply,
    Send,
    Sleep,
    Stall,
    Wait,
    json_reply,
    text_reply,
)
from tests.rawhttp import Raw, generate, lines_of, request


@pytest.fixture
def server() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake


# --------------------------------------------------------------------------- framing


def test_each_send_is_its_own_chunk_flushed_at_once(server: FakeOllama) -> None:
    gate = threading.Event()
    server.script(Reply(events=[Send(b'{"a":1}\n'), Wait(gate, 5), Send(b'{"b":2}\n')]))
    raw = Raw(server.url, body={"model": "m", "prompt": "x"})
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
        rec = server.wait_for_request()
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


def test_sends_are_never_reframed(server: FakeOllama) -> None:
    parts = [b'{"response":"a', b'b"}\n{"resp', b'onse":"\xc3', b'\xa9"}\n']
    server.script(Reply(events=[Send(p) for p in parts]))
    raw = Raw(server.url, body={"model": "m", "prompt": "x"})
    try:
        raw.head()
        assert [raw.chunk() for _ in parts] == parts
        assert raw.chunk() is None
    finally:
        raw.close()


@pytest.mark.parametrize(("batch", "sizes"), [(None, [64, 64, 64, 8, 1]), (1, [1] * 201)])
def test_burst_lines_per_chunk(server: FakeOllama, batch: int | None, sizes: list[int]) -> None:
    options: dict[str, Any] = {"fake_tokens": 200}
    if batch is not None:
        options["fake_batch"] = batch
    raw = Raw(server.url, body={"model": "burst", "prompt": "hi", "options": options})
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


def test_a_burst_is_recorded_per_write_and_sent_whole_with_a_content_length(
    server: FakeOllama,
) -> None:
    line = b'{"response":"tok ","done":false}\n'
    server.script(Reply(events=[Burst(line, 5000, 3)]))
    server.script(Reply(events=[Burst(line, 3), Send(b"end\n")], content_length=True))
    _, headers, body = generate(server.url, "m")
    assert headers["transfer-encoding"] == "chunked" and body == line * 5000
    first = server.wait_for_request()
    assert 1 < len(first.sent) < 5000 // 3  # many chunks a write
    assert first.sent_bytes == line * 5000
    _, headers, body = generate(server.url, "m")
    assert headers["content-length"] == str(len(body)) and body == line * 3 + b"end\n"


def test_headers_wait_for_the_first_send(server: FakeOllama) -> None:
    gate = threading.Event()
    server.script(Reply(events=[Wait(gate, 5), Send(b"{}\n")]))
    raw = Raw(server.url, body={"model": "m", "prompt": "x"})
    try:
        server.wait_for_request()
        raw.sock.settimeout(0.1)
        with pytest.raises(TimeoutError):
            raw.sock.recv(1)  # like Ollama loading a model: not even the status line
        raw.sock.settimeout(5)
        gate.set()
        assert raw.head()[0] == 200
        assert raw.chunk() == b"{}\n"
    finally:
        raw.close()


def test_close_delimited_body(server: FakeOllama) -> None:
    server.script(Reply(events=[Send(b"one\n"), Send(b"two\n")], chunked=False))
    raw = Raw(server.url, body={"model": "m", "prompt": "x"})
    try:
        status, headers = raw.head()
        assert status == 200
        assert headers["connection"] == "close"
        assert "transfer-encoding" not in headers and "content-length" not in headers
        assert raw.rest() == b"one\ntwo\n"
    finally:
        raw.close()
    assert server.wait_for_request().left.wait(5)


def test_drop_ends_without_terminator(server: FakeOllama) -> None:
    server.script(Reply(events=[Send(b"one\n"), Drop(), Send(b"never\n")]))
    raw = Raw(server.url, body={"model": "m", "prompt": "x"})
    try:
        raw.head()
        assert raw.rest() == b"4\r\none\n\r\n"
    finally:
        raw.close()
    assert server.wait_for_request().finished_at is None


def test_content_length_drop_sends_a_short_body(server: FakeOllama) -> None:
    server.script(Reply(content_length=True, events=[Send(b"abc"), Drop(), Send(b"def")]))
    raw = Raw(server.url, body={"model": "m", "prompt": "x"})
    try:
        _, headers = raw.head()
        assert headers["content-length"] == "6"
        assert raw.rest() == b"abc"
    finally:
        raw.close()


def test_script_fifo_per_path_and_any_path(server: FakeOllama) -> None:
    server.script(json_reply({"n": 1}))
    server.script(json_reply({"n": 2}))
    server.script(text_reply(418, "teapot"), path=None)
    assert json.loads(generate(server.url, "m")[2]) == {"n": 1}
    assert request(server.url, "GET", "/anything")[:3:2] == (418, b"teapot")
    assert json.loads(generate(server.url, "m")[2]) == {"n": 2}
    assert generate(server.url, "m")[0] == 200  # back to the default echo
    assert [r.path for r in server.wait_for_requests(4)] == [
        "/api/generate",
        "/anything",
        "/api/generate",
        "/api/generate",
    ]


def test_keep_alive_connection_serves_several_requests(server: FakeOllama) -> None:
    parts = urlsplit(server.url)
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
def test_client_leaving_is_noticed(server: FakeOllama, pause: Any) -> None:
    server.script(Reply(events=[Send(b"{}\n"), pause, Send(b"never\n")]))
    raw = Raw(server.url, body={"model": "m", "prompt": "x"})
    raw.head()
    assert raw.chunk() == b"{}\n"
    closed = time.monotonic()
    raw.close()
    rec = server.wait_for_request()
    assert rec.left.wait(5)
    assert rec.left_at is not None and rec.left_at >= closed
    assert rec.finished_at is None
    assert [data for _, data in rec.sent] == [b"{}\n"]


def test_client_leaving_during_a_silent_stall(server: FakeOllama) -> None:
    raw = Raw(server.url, body={"model": "stall", "prompt": "x"})
    rec = server.wait_for_request()
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


def test_wait_for_request_times_out(server: FakeOllama) -> None:
    with pytest.raises(TimeoutError):
        server.wait_for_request(timeout=0.05)


# --------------------------------------------------------------------------- default behaviours

"""ostream.testing: the default answers and the behaviours model names pick."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest

from ostream.testing import (
    CONTROL_TEXT,
    ERROR_MID_MESSAGE,
    SPLIT_UTF8_TEXT,
    THINK_TEXT,
    TOOL_CALLS,
    FakeOllama,
    Send,
    Sleep,
    chat_chunks,
    error_reply,
    gen_chunks,
    ndjson,
    tokenize,
)
from tests.rawhttp import generate, lines_of, request


@pytest.fixture
def server() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake


def test_default_echo_stream(server: FakeOllama) -> None:
    status, headers, body = generate(server.url, "llama3.1:8b", "hello world")
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
    rec = server.wait_for_request()
    assert len(rec.sent) == 4  # one chunk per line
    assert b"".join(d for _, d in rec.sent) == body
    assert body.endswith(b"}\n") and b": " not in body.replace(b'"echo: ', b"")


def test_default_chat_stream(server: FakeOllama) -> None:
    messages = [{"role": "user", "content": "first"}, {"role": "user", "content": "hi there"}]
    status, _, body = request(server.url, "POST", "/api/chat", {"model": "m", "messages": messages})
    assert status == 200
    objs = lines_of(body)
    assert "".join(o["message"]["content"] for o in objs) == "echo: hi there"
    assert all(o["message"]["role"] == "assistant" for o in objs)
    assert objs[-1]["done"] is True and "context" not in objs[-1]


def test_go_style_json_encoding(server: FakeOllama) -> None:
    body = generate(server.url, "m", "é <b> & ✓")[2]
    assert "é".encode() in body and "✓".encode() in body  # raw UTF-8, like Go
    assert b"\\u003cb\\u003e" in body and b"\\u0026" in body
    assert "".join(o["response"] for o in lines_of(body)) == "echo: é <b> & ✓"


def test_stream_false_answers_one_object(server: FakeOllama) -> None:
    status, headers, body = generate(server.url, "m", "a b", stream=False)
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert int(headers["content-length"]) == len(body)
    obj = json.loads(body)
    assert obj["response"] == "echo: a b" and obj["done"] is True
    status, _, body = request(
        server.url,
        "POST",
        "/api/chat",
        {"model": "think", "messages": [{"role": "user", "content": "q"}], "stream": False},
    )
    obj = json.loads(body)
    assert obj["message"]["content"] == "echo: q" and obj["message"]["thinking"] == THINK_TEXT


def test_empty_prompt_only_loads(server: FakeOllama) -> None:
    status, headers, body = generate(server.url, "m", "")
    assert status == 200 and "content-length" in headers
    obj = json.loads(body)
    assert obj["done"] is True and obj["done_reason"] == "load" and obj["response"] == ""
    status, _, body = request(server.url, "POST", "/api/chat", {"model": "m", "messages": []})
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
def test_error_statuses(server: FakeOllama, model: str, status: int, message: str) -> None:
    got_status, headers, body = generate(server.url, model)
    assert got_status == status
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(body) == {"error": message}


def test_busy_once(server: FakeOllama) -> None:
    assert generate(server.url, "busy-once")[0] == 503
    assert generate(server.url, "busy-once")[0] == 200


def test_html_and_unknown_path(server: FakeOllama) -> None:
    status, headers, body = generate(server.url, "html")
    assert status == 502 and headers["content-type"] == "text/html"
    assert body == b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    status, headers, body = request(server.url, "GET", "/api/nope")
    assert (status, headers["content-type"], body) == (404, "text/plain", b"404 page not found")
    # Wrong method on a known path: 405, as Ollama's router answers.
    assert request(server.url, "GET", "/api/generate")[0] == 405


def test_bad_requests(server: FakeOllama) -> None:
    status, _, body = request(server.url, "POST", "/api/generate", b"{bad")
    assert status == 400 and json.loads(body)["error"].startswith("invalid character 'b'")
    status, _, body = request(server.url, "POST", "/api/chat", {"messages": []})
    assert (status, json.loads(body)) == (400, {"error": "model is required"})


def test_split_utf8_sends_one_byte_chunks(server: FakeOllama) -> None:
    body = generate(server.url, "split-utf8")[2]
    rec = server.wait_for_request()
    assert all(len(data) == 1 for _, data in rec.sent)
    assert len(rec.sent) == len(body)
    assert "".join(o["response"] for o in lines_of(body)) == SPLIT_UTF8_TEXT


def test_huge_line(server: FakeOllama) -> None:
    body = generate(server.url, "huge", options={"fake_size": 5000})[2]
    objs = lines_of(body)
    assert objs[0]["response"] == "x" * 5000 and objs[-1]["done"] is True
    assert len(server.wait_for_request().sent) == 2


def test_misbehaving_streams(server: FakeOllama) -> None:
    objs = lines_of(generate(server.url, "error-mid")[2])
    assert objs[-1] == {"error": ERROR_MID_MESSAGE} and not any(o.get("done") for o in objs)
    objs = lines_of(generate(server.url, "truncated")[2])
    assert objs and not any(o["done"] for o in objs)
    with pytest.raises(http.client.IncompleteRead):
        generate(server.url, "drop")
    body = generate(server.url, "notjson")[2]
    assert body.split(b"\n")[1] == b"this is not json"


def test_canned_models(server: FakeOllama) -> None:
    url = server.url
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
    recs = server.wait_for_requests(6)
    assert len(recs[4].sent) == 1  # multi: every line in one chunk


def test_burst_and_paced(server: FakeOllama) -> None:
    objs = lines_of(generate(server.url, "burst", options={"fake_tokens": 200})[2])
    assert len(objs) == 201 and objs[-1]["eval_count"] == 200
    assert server.wait_for_request().sent_bytes.count(b"\n") == 201
    objs = lines_of(
        generate(server.url, "paced", options={"fake_tokens": 5, "fake_delay": 0.01})[2]
    )
    assert len(objs) == 6
    times = [t for t, _ in server.wait_for_requests(2)[1].sent]
    assert len(times) == 6 and times[-1] - times[0] >= 0.04
    objs = lines_of(generate(server.url, "slow", options={"fake_delay": 0.001})[2])
    assert "".join(o["response"] for o in objs) == "echo: hello world"


def test_other_endpoints(server: FakeOllama) -> None:
    url = server.url
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


def test_a_trailing_assistant_message_is_continued(server: FakeOllama) -> None:
    def chat(model: str, *messages: dict[str, str]) -> list[str]:
        status, _, body = request(
            server.url, "POST", "/api/chat", {"model": model, "messages": list(messages)}
        )
        assert status == 200
        return [o["message"]["content"] for o in lines_of(body) if not o.get("done")]

    question = {"role": "user", "content": "one two three"}
    assert chat("m", question, {"role": "assistant", "content": "echo: one t"}) == ["wo", " three"]
    # Not how the echo starts: answered anew.
    assert (
        "".join(chat("m", question, {"role": "assistant", "content": "Hi"}))
        == "echo: one two three"
    )
    # `cut` completes a continuation (a fresh request drops: tests/test_resume.py).
    assert chat("cut", question, {"role": "assistant", "content": "echo: one"}) == [
        " two",
        " three",
    ]

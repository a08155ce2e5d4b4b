"""ostream.testing's OpenAI-compatible endpoints, in Ollama's shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ostream.testing import TOOL_CALLS, FakeOllama, Sim
from tests.rawhttp import Raw, request


@pytest.fixture
def server() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake


def events(body: bytes) -> list[Any]:
    """The `data:` payloads of a server-sent event stream, [DONE] as the string."""
    assert body.endswith(b"\n\n")
    out: list[Any] = []
    for event in body.decode().split("\n\n")[:-1]:
        assert event.startswith("data: "), event
        data = event.removeprefix("data: ")
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def chat(url: str, model: str = "m", **extra: Any) -> tuple[int, dict[str, str], bytes]:
    body = {"model": model, "messages": [{"role": "user", "content": "hi there"}], **extra}
    return request(url, "POST", "/v1/chat/completions", body)


def test_chat_streamed_as_server_sent_events(server: FakeOllama) -> None:
    raw = Raw(server.url, "/v1/chat/completions", body=json.loads(chat_body(stream=True)))
    try:
        status, headers = raw.head()
        assert status == 200 and headers["content-type"] == "text/event-stream"
        first = raw.chunk()  # one HTTP chunk per event, as it is produced
        assert first is not None and first.startswith(b"data: ") and first.endswith(b"\n\n")
    finally:
        raw.close()
    status, headers, body = chat(server.url, stream=True)
    got = events(body)
    assert got[-1] == "[DONE]"
    chunks = got[:-1]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "echo:"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "echo: hi there"
    assert chunks[-1]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert all(c["system_fingerprint"] == "fp_ollama" and c["model"] == "m" for c in chunks)


def chat_body(**extra: Any) -> bytes:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi there"}], **extra}
    return json.dumps(body).encode()


def test_chat_usage_chunk_when_asked(server: FakeOllama) -> None:
    got = events(chat(server.url, stream=True, stream_options={"include_usage": True})[2])
    usage = got[-2]
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}


def test_chat_not_streamed(server: FakeOllama) -> None:
    status, headers, body = chat(server.url)  # OpenAI's default: no stream
    assert status == 200 and headers["content-type"].startswith("application/json")
    obj = json.loads(body)
    assert obj["object"] == "chat.completion"
    assert obj["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "echo: hi there"},
            "finish_reason": "stop",
        }
    ]
    assert obj["usage"]["completion_tokens"] == 3
    native = server.wait_for_request()
    assert native.path == "/v1/chat/completions"


def test_content_parts_and_max_tokens(server: FakeOllama) -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "a "}, {"type": "text", "text": "b"}]}
    ]
    body = {"model": "m", "messages": messages}
    obj = json.loads(request(server.url, "POST", "/v1/chat/completions", body)[2])
    assert obj["choices"][0]["message"]["content"] == "echo: a b"
    with FakeOllama(sim=Sim(reply_tokens=(9, 9))) as sim:
        body = {"model": "llama3.1", "prompt": "x", "max_tokens": 2}
        obj = json.loads(request(sim.url, "POST", "/v1/completions", body)[2])
        assert obj["choices"][0]["finish_reason"] == "length"
        assert obj["usage"]["completion_tokens"] == 2
        assert sim.counters.served == 1


def test_tool_calls(server: FakeOllama) -> None:
    obj = json.loads(chat(server.url, "tools")[2])
    choice = obj["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == TOOL_CALLS[0]["function"]["arguments"]
    streamed = events(chat(server.url, "tools", stream=True)[2])
    assert streamed[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_completions(server: FakeOllama) -> None:
    body = {"model": "m", "prompt": "hello"}
    obj = json.loads(request(server.url, "POST", "/v1/completions", body)[2])
    assert obj["object"] == "text_completion" and obj["id"].startswith("cmpl-")
    assert obj["choices"] == [{"text": "echo: hello", "index": 0, "finish_reason": "stop"}]
    got = events(request(server.url, "POST", "/v1/completions", {**body, "stream": True})[2])
    assert got[-1] == "[DONE]"
    assert "".join(c["choices"][0]["text"] for c in got[:-1]) == "echo: hello"
    assert got[-2]["choices"][0]["finish_reason"] == "stop"


def test_embeddings_and_models(server: FakeOllama) -> None:
    body = {"model": "m", "input": ["a", "b"]}
    obj = json.loads(request(server.url, "POST", "/v1/embeddings", body)[2])
    assert obj["object"] == "list" and obj["model"] == "m"
    assert [(e["object"], e["index"]) for e in obj["data"]] == [("embedding", 0), ("embedding", 1)]
    models = json.loads(request(server.url, "GET", "/v1/models")[2])
    assert models["object"] == "list" and models["data"][0]["id"] == "llama3.1:latest"


@pytest.mark.parametrize(
    ("model", "status", "kind"),
    [("missing", 404, "not_found_error"), ("busy", 503, "api_error"), ("boom", 500, "api_error")],
)
def test_errors_in_openai_shape(server: FakeOllama, model: str, status: int, kind: str) -> None:
    got_status, _, body = chat(server.url, model, stream=True)
    assert got_status == status
    error = json.loads(body)["error"]
    assert error["type"] == kind and error["param"] is None and error["code"] is None
    if model == "missing":
        assert error["message"] == "model 'missing' not found"


def test_an_error_mid_stream_is_an_event(server: FakeOllama) -> None:
    got = events(chat(server.url, "error-mid", stream=True)[2])
    assert got[-1]["error"]["message"] == "an error was encountered while running the model"
    assert "[DONE]" not in got

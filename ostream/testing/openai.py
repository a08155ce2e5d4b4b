"""Ollama's OpenAI-compatible endpoints: /v1/chat/completions, /v1/completions, /v1/embeddings.

A request is turned into its native one (/api/chat, /api/generate, /api/embed), answered
as that one would be (behaviours and simulation included), and the answer is turned into
OpenAI's shapes, as Ollama's middleware/openai.go does: one object without ``stream``;
server-sent events with it (``data: {...}`` per chunk, a finish chunk, a usage chunk
when ``stream_options.include_usage``, then ``data: [DONE]``).
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from ostream.testing.events import JSON_CT, SSE_CT, Burst, Event, Reply, Send
from ostream.testing.replies import go_json

KINDS = {"/v1/chat/completions": "chat", "/v1/completions": "generate", "/v1/embeddings": "embed"}


def native_request(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """The /api request an OpenAI one stands for."""
    req: dict[str, Any] = {"model": body.get("model")}
    kind = KINDS[path]
    if kind == "embed":
        req["input"] = body.get("input")
        return req
    req["stream"] = body.get("stream") is True
    options: dict[str, Any] = {}
    for ours, theirs in (("num_predict", "max_tokens"), ("temperature", "temperature")):
        if body.get(theirs) is not None:
            options[ours] = body[theirs]
    if options:
        req["options"] = options
    if kind == "generate":
        req["prompt"] = body.get("prompt")
        return req
    messages = body.get("messages")
    req["messages"] = [_message(m) for m in messages] if isinstance(messages, list) else messages
    return req


def _message(msg: Any) -> Any:
    """Content parts (`[{"type": "text", "text": ...}]`) joined into one string."""
    if isinstance(msg, dict) and isinstance(msg.get("content"), list):
        parts = [p.get("text", "") for p in msg["content"] if isinstance(p, dict)]
        return {**msg, "content": "".join(p for p in parts if isinstance(p, str))}
    return msg


def error_object(status: int, message: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def convert(path: str, body: dict[str, Any], reply: Reply) -> Reply:
    """The native reply in OpenAI's shapes; events that are not data pass unchanged."""
    if reply.status != 200:
        data = b"".join(ev.data for ev in reply.events if isinstance(ev, Send))
        try:
            message = str(json.loads(data)["error"])
        except (ValueError, KeyError, TypeError):
            message = data.decode("utf-8", "replace")
        obj = error_object(reply.status, message)
        return _whole(reply, json.dumps(obj, separators=(",", ":")).encode() + b"\n")
    writer = _Writer(KINDS[path], body)
    events: list[Event] = []
    buffer = b""
    for ev in reply.events:
        if isinstance(ev, Burst):  # converted line by line: its lines, spelled out
            ev = Send(ev.line * ev.count)
        if not isinstance(ev, Send):
            events.append(ev)
            continue
        buffer += ev.data
        *complete, buffer = buffer.split(b"\n")
        if reply.content_length:
            complete, buffer = [*complete, buffer], b""
        out = b"".join(writer.write(line) for line in complete if line.strip())
        if out:
            events.append(Send(out))
    return Reply(
        status=reply.status,
        content_type=SSE_CT if writer.stream else JSON_CT,
        events=events,
        chunked=reply.chunked,
        content_length=reply.content_length,
        on_end=reply.on_end,
    )


def _whole(reply: Reply, data: bytes) -> Reply:
    return Reply(
        status=reply.status,
        content_type=JSON_CT,
        events=[Send(data)],
        content_length=True,
        on_end=reply.on_end,
    )


class _Writer:
    """One native line in, its OpenAI bytes out (Ollama's ChatWriter and CompleteWriter)."""

    def __init__(self, kind: str, body: dict[str, Any]) -> None:
        self.kind = kind
        self.stream = kind != "embed" and body.get("stream") is True
        prefix = "chatcmpl" if kind == "chat" else "cmpl"
        self.id = f"{prefix}-{random.randrange(999)}"
        options = body.get("stream_options")
        self.usage = isinstance(options, dict) and options.get("include_usage") is True
        self.model = body.get("model")
        self.created = int(time.time())
        self.first = True
        self.tool_call_sent = False

    def write(self, line: bytes) -> bytes:
        try:
            obj = json.loads(line)
        except ValueError:
            return line + b"\n"  # not JSON: passed on as it came
        if not isinstance(obj, dict):
            return line + b"\n"
        if "error" in obj:
            return _event(error_object(500, str(obj["error"])))
        if self.kind == "embed":
            return go_json(self._embeddings(obj)) + b"\n"
        if not self.stream:
            return go_json(self._whole(obj)) + b"\n"
        return self._chunk(obj)

    def _usage(self, obj: dict[str, Any]) -> dict[str, int]:
        prompt, evals = int(obj.get("prompt_eval_count", 0)), int(obj.get("eval_count", 0))
        return {"prompt_tokens": prompt, "completion_tokens": evals, "total_tokens": prompt + evals}

    def _head(self, obj_type: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": obj_type,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_ollama",
        }

    def _embeddings(self, obj: dict[str, Any]) -> dict[str, Any]:
        data = [
            {"object": "embedding", "embedding": e, "index": i}
            for i, e in enumerate(obj.get("embeddings") or [])
        ]
        count = int(obj.get("prompt_eval_count", 0))
        return {
            "object": "list",
            "data": data,
            "model": self.model,
            "usage": {"prompt_tokens": count, "total_tokens": count},
        }

    def _whole(self, obj: dict[str, Any]) -> dict[str, Any]:
        reason = obj.get("done_reason") or None
        if self.kind == "generate":
            choice: dict[str, Any] = {"text": obj.get("response", ""), "index": 0}
            choice["finish_reason"] = reason
            return {**self._head("text_completion"), "choices": [choice], "usage": self._usage(obj)}
        msg = obj.get("message") or {}
        calls = _tool_calls(msg.get("tool_calls"))
        out: dict[str, Any] = {"role": msg.get("role", "assistant"), "content": msg.get("content")}
        if msg.get("thinking"):
            out["reasoning"] = msg["thinking"]
        if calls:
            out["tool_calls"] = calls
            reason = "tool_calls" if reason == "stop" else reason
        choice = {"index": 0, "message": out, "finish_reason": reason}
        return {**self._head("chat.completion"), "choices": [choice], "usage": self._usage(obj)}

    def _chunk(self, obj: dict[str, Any]) -> bytes:
        done = obj.get("done") is True
        out = b""
        if self.kind == "generate":
            reason = obj.get("done_reason") or None
            choice = {"text": obj.get("response", ""), "index": 0, "finish_reason": reason}
            chunk: dict[str, Any] = {**self._head("text_completion"), "choices": [choice]}
            if self.usage:
                chunk["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            out += _event(chunk)
            if done and self.usage:
                out += _event({**chunk, "choices": [], "usage": self._usage(obj)})
        else:
            msg = obj.get("message") or {}
            content, thinking = msg.get("content", ""), msg.get("thinking", "")
            calls = _tool_calls(msg.get("tool_calls"))
            if not (done and not self.first and not content and not thinking and not calls):
                delta: dict[str, Any] = {"role": "assistant"} if self.first else {}
                delta["content"] = content
                if thinking:
                    delta["reasoning"] = thinking
                if calls:
                    delta["tool_calls"] = calls
                    self.tool_call_sent = True
                choice = {"index": 0, "delta": delta, "finish_reason": None}
                out += _event({**self._head("chat.completion.chunk"), "choices": [choice]})
            if done:
                reason = obj.get("done_reason") or "stop"
                if reason == "stop" and self.tool_call_sent:
                    reason = "tool_calls"
                finish: dict[str, Any] = {"index": 0, "delta": {}, "finish_reason": reason}
                chunk = {**self._head("chat.completion.chunk"), "choices": [finish]}
                out += _event(chunk)
                if self.usage:
                    out += _event({**chunk, "choices": [], "usage": self._usage(obj)})
        self.first = False
        if done:
            out += b"data: [DONE]\n\n"
        return out


def _tool_calls(calls: Any) -> list[dict[str, Any]]:
    if not isinstance(calls, list):
        return []
    out = []
    for i, call in enumerate(calls):
        function = call.get("function", {}) if isinstance(call, dict) else {}
        out.append(
            {
                "id": call.get("id", f"call_{i}") if isinstance(call, dict) else f"call_{i}",
                "index": i,
                "type": "function",
                "function": {
                    "name": function.get("name", ""),
                    "arguments": json.dumps(function.get("arguments", {}), separators=(",", ":")),
                },
            }
        )
    return out


def _event(obj: dict[str, Any]) -> bytes:
    return b"data: " + go_json(obj) + b"\n\n"

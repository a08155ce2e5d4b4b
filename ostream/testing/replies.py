"""Ollama's bytes: Go-style JSON, NDJSON lines, the generate and chat streams, plain replies."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from typing import Any

from ostream.testing.events import JSON_CT, Event, Reply, Send, Sleep

CONTEXT = [1, 2, 3]


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


def metrics(
    eval_count: int,
    *,
    prompt_eval_count: int = 10,
    load_duration: float = 0.01,
    prompt_eval_duration: float = 0.05,
    eval_duration: float | None = None,
) -> dict[str, int]:
    """The done-line metrics (durations given in seconds, sent in nanoseconds).

    By default the eval rate is 50 tokens/s."""
    load = int(load_duration * 1e9)
    prompt_eval = int(prompt_eval_duration * 1e9)
    if eval_duration is None:
        evals = max(eval_count, 1) * 20_000_000
    else:
        evals = max(int(eval_duration * 1e9), 1)
    return {
        "total_duration": load + prompt_eval + evals + 1_000_000,
        "load_duration": load,
        "prompt_eval_count": prompt_eval_count,
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


def paced(lines: Iterable[bytes], delay: float) -> list[Event]:
    """One Send per line, with a Sleep of ``delay`` between lines when it is positive."""
    events: list[Event] = []
    for i, line in enumerate(lines):
        if i and delay > 0:
            events.append(Sleep(delay))
        events.append(Send(line))
    return events


def message(
    content: str,
    thinking: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An assistant message as Ollama sends it."""
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        msg["thinking"] = thinking
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return msg


def gen_lines(
    tokens: list[str],
    *,
    model: str,
    thinking: list[str] | None = None,
    done_text: str = "",
    done_extra: dict[str, Any] | None = None,
) -> list[bytes]:
    """The /api/generate stream as NDJSON lines, the done line last."""
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


def chat_lines(
    tokens: list[str],
    *,
    model: str,
    thinking: list[str] | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    done_text: str = "",
    done_extra: dict[str, Any] | None = None,
) -> list[bytes]:
    """The /api/chat stream as NDJSON lines: thinking, tokens, tool calls, the done line."""
    lines = [ndjson(_chat_line(model, message("", thinking=t))) for t in thinking or []]
    lines += [ndjson(_chat_line(model, message(t))) for t in tokens]
    if tool_calls:
        lines.append(ndjson(_chat_line(model, message("", tool_calls=tool_calls))))
    final: dict[str, Any] = {
        "model": model,
        "created_at": created_at(),
        "message": message(done_text),
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
    lines = gen_lines(
        tokens, model=model, thinking=thinking, done_text=done_text, done_extra=done_extra
    )
    return paced(lines, delay)


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
    lines = chat_lines(
        tokens,
        model=model,
        thinking=thinking,
        tool_calls=tool_calls,
        done_text=done_text,
        done_extra=done_extra,
    )
    return paced(lines, delay)


def load_object(kind: str, model: str) -> dict[str, Any]:
    """The answer to an empty prompt (generate) or no messages (chat): the model loaded."""
    obj: dict[str, Any] = {"model": model, "created_at": created_at()}
    if kind == "generate":
        obj["response"] = ""
    else:
        obj["message"] = message("")
    obj.update(done=True, done_reason="load")
    return obj


def json_reply(obj: Any, status: int = 200) -> Reply:
    """A plain JSON answer with a Content-Length, as Gin's c.JSON sends it."""
    return Reply(
        status=status, content_type=JSON_CT, events=[Send(go_json(obj))], content_length=True
    )


def error_reply(status: int, message: str) -> Reply:
    """``{"error": message}`` with the given status."""
    return json_reply({"error": message}, status)


def text_reply(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Reply:
    """A non-JSON answer (proxies, unknown paths)."""
    return Reply(
        status=status, content_type=content_type, events=[Send(text.encode())], content_length=True
    )


def empty_reply(status: int = 200) -> Reply:
    """A status with an empty body (/api/copy, /api/delete)."""
    return Reply(status=status, content_type="", events=[], content_length=True)


def _gen_line(model: str, response: str, thinking: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"model": model, "created_at": created_at(), "response": response}
    if thinking is not None:
        obj["thinking"] = thinking
    obj["done"] = False
    return obj


def _chat_line(model: str, msg: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, "created_at": created_at(), "message": msg, "done": False}

"""Model names that pick a behaviour: the failures a test can ask for by name.

Unscripted, /api/generate and /api/chat echo ``"echo: " + prompt`` (or the last
message), one word per line and chunk. The model name (its last path part, before
any ``:tag``) picks a behaviour from :data:`BEHAVIOURS`, tuned by ``options.fake_*``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ostream.testing.events import JSON_CT, Burst, Drop, Event, Reply, Send, Sleep, Stall
from ostream.testing.replies import (
    CONTEXT,
    chat_lines,
    created_at,
    error_reply,
    gen_lines,
    go_json,
    json_reply,
    load_object,
    message,
    metrics,
    ndjson,
    paced,
    text_reply,
    tokenize,
)

ECHO_PREFIX = "echo: "
THINK_TEXT = "Let me think."
SPLIT_UTF8_TEXT = "héllo wörld ✓ 🎉"
CONTROL_TEXT = "safe \x1b]0;pwned\x07title \x1b[2Jcleared \x9b31mred end"
ERROR_MID_MESSAGE = "an error was encountered while running the model"
BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
TOOL_CALLS: list[dict[str, Any]] = [
    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
]
HTML_502 = "<html><body><h1>502 Bad Gateway</h1></body></html>"
FEW_TOKENS = 2  # tokens sent before error-mid / drop / truncated misbehave
BURST_BATCH = 64  # lines per HTTP chunk for the `burst` model, unless fake_batch says

# name -> what it does (the table in docs/testing.md is this one).
BEHAVIOURS: dict[str, str] = {
    "missing": "404 `model 'NAME' not found` (also from /api/show, /api/pull, /api/delete)",
    "old-missing": '404 in older servers\' words: `model "NAME" not found, try pulling it first`',
    "busy": "503 `server busy, please try again.`",
    "busy-once": "503 for the first such request a server gets, then the echo",
    "boom": "500 `llama runner process has terminated`",
    "html": "502 with an HTML body (a proxy)",
    "slow": "the echo with `fake_delay` (0.05) seconds between lines",
    "paced": "`fake_tokens` (60) lines of `tok `, `fake_delay` (0.005) seconds apart",
    "burst": "`fake_tokens` (1000) lines of `tok `, `fake_batch` (64) lines per HTTP chunk"
    " (1: Ollama's framing), many chunks per write",
    "error-mid": 'two tokens, then an `{"error": ...}` line, then a clean end',
    "drop": "two tokens (`fake_tokens_before`), then the connection closes without the"
    " chunked terminator",
    "cut": "like `drop`, but a chat that ends with an assistant message (a cut reply to"
    " continue) is answered in full",
    "truncated": "two tokens, then a clean end without a `done` line",
    "stall": "`fake_tokens_before` (0) lines, then silence for `fake_stall` (60) s, then a drop;"
    " with 0 lines not even the headers are sent",
    "notjson": "a line that is not JSON after the first one",
    "huge": "one line of `fake_size` (50,000,000) bytes of `x`",
    "split-utf8": "`SPLIT_UTF8_TEXT` sent one byte per HTTP chunk",
    "multi": "every line in one HTTP chunk",
    "close": "a close-delimited body (no chunked encoding)",
    "think": "`THINK_TEXT` as `thinking` lines first",
    "tools": "chat: `TOOL_CALLS` instead of text",
    "done-text": "the last words arrive only in the `done` line",
    "control": "`CONTROL_TEXT`: terminal escapes and C1 controls",
}


def behaviour(model: str) -> str:
    """The behaviour a model name picks: its last path part, without the tag."""
    return model.rsplit("/", 1)[-1].split(":", 1)[0]


def opt_float(opts: dict[str, Any], key: str, default: float) -> float:
    try:
        return float(opts.get(key, default))
    except (TypeError, ValueError):
        return default


def opt_int(opts: dict[str, Any], key: str, default: int) -> int:
    try:
        return int(opts.get(key, default))
    except (TypeError, ValueError):
        return default


def model_error(model: str, first_busy: Callable[[], bool]) -> Reply | None:
    """The error a model that fails to load answers with, if its name asks for one.

    `first_busy()` says whether this is the server's first `busy-once` request."""
    beh = behaviour(model)
    if beh == "missing":
        return error_reply(404, f"model '{model}' not found")
    if beh == "old-missing":
        return error_reply(404, f'model "{model}" not found, try pulling it first')
    if beh == "busy" or (beh == "busy-once" and first_busy()):
        return error_reply(503, "server busy, please try again.")
    if beh == "boom":
        return error_reply(500, "llama runner process has terminated")
    if beh == "html":
        return text_reply(502, HTML_502, "text/html")
    return None


def prompt_text(kind: str, req: dict[str, Any]) -> tuple[str, bool]:
    """The text to echo (the prompt or the last message) and whether the request is empty.

    A chat that ends with an assistant message continues it, as Ollama does: the text
    is then the message before it (see `prefilled`)."""
    if kind == "generate":
        prompt = req.get("prompt")
        text = prompt if isinstance(prompt, str) else ""
        return text, not text
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages:
        return "", True
    if prefilled(kind, req) is not None and len(messages) > 1:
        messages = messages[:-1]
    last = messages[-1]
    content = last.get("content") if isinstance(last, dict) else None
    return (content if isinstance(content, str) else ""), False


def prefilled(kind: str, req: dict[str, Any]) -> str | None:
    """The text of a chat's trailing assistant message (the reply to continue), if any."""
    messages = req.get("messages") if kind == "chat" else None
    last = messages[-1] if isinstance(messages, list) and messages else None
    if not isinstance(last, dict) or last.get("role") != "assistant":
        return None
    content = last.get("content")
    return content if isinstance(content, str) else ""


def continued(echo: str, prefix: str | None) -> str:
    """What follows `prefix` in `echo`: the rest of a cut reply (all of it when the
    prefix is not how the echo starts)."""
    if prefix is None or not echo.startswith(prefix):
        return echo
    return echo[len(prefix) :]


def options_of(req: dict[str, Any]) -> dict[str, Any]:
    opts = req.get("options")
    return opts if isinstance(opts, dict) else {}


def completion(kind: str, req: dict[str, Any], model: str) -> Reply:
    """/api/generate or /api/chat for a model that loaded: the echo, or its behaviour."""
    beh = behaviour(model)
    opts = options_of(req)
    stream = req.get("stream", True) is not False
    text, empty = prompt_text(kind, req)
    prefix = prefilled(kind, req)
    tokens = tokenize(continued(ECHO_PREFIX + text, prefix))
    if beh == "stall":
        before = opt_int(opts, "fake_tokens_before", 0)
        stall = Stall(opt_float(opts, "fake_stall", 60.0))
        if not stream:
            return Reply(content_type=JSON_CT, events=[stall], content_length=True)
        tokens = (tokens + ["tok "] * before)[:before]
        return Reply(events=[*paced(lines(kind, model, tokens)[:-1], 0), stall])
    if empty:
        return json_reply(load_object(kind, model))

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
        count = opt_int(opts, "fake_tokens", 1000)
        line, done = lines(kind, model, ["tok "], done_extra=metrics(count))
        batch = opt_int(opts, "fake_batch", BURST_BATCH)
        return Reply(events=[Burst(line, count, batch), Send(done)])
    elif beh == "burst":
        tokens = ["tok "] * opt_int(opts, "fake_tokens", 1000)
    elif beh == "paced":
        tokens = ["tok "] * opt_int(opts, "fake_tokens", 60)
    elif beh == "huge":
        tokens = ["x" * opt_int(opts, "fake_size", 50_000_000)]

    delay = 0.0
    if beh == "slow":
        delay = opt_float(opts, "fake_delay", 0.05)
    elif beh == "paced":
        delay = opt_float(opts, "fake_delay", 0.005)

    if not stream:
        return _whole(kind, model, beh, tokens, thinking, tool_calls, done_text, delay)

    all_lines = lines(kind, model, tokens, thinking, tool_calls, done_text)
    few = all_lines[:-1][: len(thinking) + FEW_TOKENS]
    if beh in ("drop", "cut"):
        few = all_lines[:-1][: len(thinking) + opt_int(opts, "fake_tokens_before", FEW_TOKENS)]
    events: list[Event]
    if beh == "error-mid":
        events = paced([*few, ndjson({"error": ERROR_MID_MESSAGE})], 0)
    elif beh == "drop" or (beh == "cut" and prefix is None):
        events = [*paced(few, 0), Drop()]
    elif beh == "truncated":
        events = paced(few, 0)
    elif beh == "notjson":
        events = paced([*all_lines[:1], b"this is not json\n", *all_lines[1:]], 0)
    elif beh == "split-utf8":
        data = b"".join(all_lines)
        events = [Send(data[i : i + 1]) for i in range(len(data))]
    elif beh == "multi":
        events = [Send(b"".join(all_lines))]
    else:
        events = paced(all_lines, delay)
    return Reply(events=events, chunked=beh != "close")


def lines(
    kind: str,
    model: str,
    tokens: list[str],
    thinking: list[str] | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    done_text: str = "",
    done_extra: dict[str, Any] | None = None,
) -> list[bytes]:
    """The NDJSON lines of a generate or chat stream."""
    if kind == "generate":
        return gen_lines(
            tokens, model=model, thinking=thinking, done_text=done_text, done_extra=done_extra
        )
    return chat_lines(
        tokens,
        model=model,
        thinking=thinking,
        tool_calls=tool_calls,
        done_text=done_text,
        done_extra=done_extra,
    )


def whole_object(
    kind: str,
    model: str,
    text: str,
    eval_count: int,
    thinking: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    done_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `"stream": false` answer: one JSON object."""
    obj: dict[str, Any]
    if kind == "generate":
        obj = {"model": model, "created_at": created_at(), "response": text}
        if thinking:
            obj["thinking"] = thinking
        obj.update(done=True, done_reason="stop", context=CONTEXT, **metrics(eval_count))
    else:
        obj = {
            "model": model,
            "created_at": created_at(),
            "message": message(text, thinking, tool_calls),
            "done": True,
            "done_reason": "stop",
            **metrics(eval_count),
        }
    obj.update(done_extra or {})
    return obj


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
    obj = whole_object(
        kind, model, "".join(tokens) + done_text, len(tokens), "".join(thinking) or None, tool_calls
    )
    body = go_json(obj)
    if beh == "error-mid":
        return error_reply(500, ERROR_MID_MESSAGE)
    if beh == "drop":
        return Reply(content_type=JSON_CT, events=[Drop()], content_length=True)
    if beh == "truncated":
        half = len(body) // 2
        return Reply(
            content_type=JSON_CT,
            content_length=True,
            events=[Send(body[:half]), Drop(), Send(body[half:])],
        )
    if beh == "close":
        return Reply(content_type=JSON_CT, events=[Send(body)], chunked=False)
    if delay > 0:
        return Reply(
            content_type=JSON_CT,
            content_length=True,
            events=[Sleep(delay * len(tokens)), Send(body)],
        )
    return json_reply(obj)

"""Continuing a cut reply: ask again with the partial reply as a trailing assistant message.

Ollama renders a conversation that ends with an assistant message without closing
that message, so the model goes on from where the text stops. One request shape
serves `--resume` (after a stream broke) and `/continue` in `chat -i` (by hand).
Thinking is turned off: a model that would think first does not continue the text,
and some servers refuse a trailing assistant message while thinking is on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ostream.errors import OstreamError, ProtocolError
from ostream.output import Writer
from ostream.stream import Kind, Reply

# Fields of a generate request that a chat request carries the same way.
_SHARED = ("model", "options", "format", "keep_alive", "stream", "tools")


def continuation(kind: Kind, body: dict[str, Any], partial: str) -> dict[str, Any]:
    """The /api/chat body that asks the model to go on after `partial`, the text of the
    reply so far to the generate or chat request `body`."""
    new = {key: body[key] for key in _SHARED if key in body}
    if kind == "generate":
        messages: list[dict[str, Any]] = []
        if body.get("system") is not None:
            messages.append({"role": "system", "content": body["system"]})
        user: dict[str, Any] = {"role": "user", "content": body.get("prompt", "")}
        if body.get("images"):
            user["images"] = body["images"]
        messages.append(user)
    else:
        messages = list(body.get("messages", []))
    new["messages"] = [*messages, {"role": "assistant", "content": partial}]
    new["think"] = False
    return new


Ask = Callable[[Kind, dict[str, Any]], None]


def resume_cut(
    broke: ProtocolError,
    ask: Ask,
    kind: Kind,
    body: dict[str, Any],
    reply: Reply,
    writer: Writer,
    retries: int,
) -> None:
    """After `broke` cut the answer to `body` short, ask again (`ask` streams one request
    into `reply`) at most `retries` times, while text was written. If the server will
    not continue, the break is what is raised, with the reason it would not."""
    for attempt in range(1, retries + 1):
        partial = reply.message()["content"]
        if not partial:
            raise broke
        writer.end_line_for_message()
        writer.info(
            f"ostream: the stream broke after {len(partial)} characters;"
            f" resuming ({attempt}/{retries})\n"
        )
        try:
            ask("chat", continuation(kind, body, partial))
            return
        except ProtocolError as exc:
            broke = exc
        except OstreamError as exc:
            why = f"{broke.message}; the server did not continue: {exc.message}"
            raise ProtocolError(why) from None
    raise broke

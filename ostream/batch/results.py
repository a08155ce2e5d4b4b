"""One result line per job, in OpenAI's batch output shape, and the streamed answer
assembled into the body a non-streamed request would have had.

    {"id": "batch_req_…", "custom_id": "a1",
     "response": {"status_code": 200, "body": {...}}, "error": null,
     "host": "http://10.0.0.2:11434", "attempts": 1}

`id` is unique per line (OpenAI's form: "batch_req_" and 24 hex digits); a rerun
gives a new one. `host` is the base URL of the server that gave this answer
(null when no server was asked: an invalid line); `attempts` counts the requests
sent for the job, retries included (0 for an invalid line). A failed job has
`"error": {"code": ..., "message": ...}`, and `response` null, or the status and
body where a server answered. Keys come in this order, and a line is compact
JSON with characters kept as they are (no \\uXXXX for non-ASCII).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any, Literal

from ostream.errors import ExitCode, ProtocolError, ServerError
from ostream.ndjson import LineFramer, compact, error_text, parse_block

INVALID_REQUEST = ExitCode.USAGE.kind


def new_id() -> str:
    return "batch_req_" + secrets.token_hex(12)


def success_line(custom_id: str, status_code: int, body: Any, *, host: str, attempts: int) -> bytes:
    """The result line of a job that succeeded, newline included."""
    return _line(custom_id, {"status_code": status_code, "body": body}, None, host, attempts)


def failure_line(
    custom_id: str,
    code: str,
    message: str,
    *,
    status_code: int | None = None,
    body: Any = None,
    host: str | None = None,
    attempts: int = 0,
) -> bytes:
    """The result line of a job that failed: `code` is a short machine name
    (invalid_request, model_not_found, ...), `message` the human sentence."""
    response = None if status_code is None else {"status_code": status_code, "body": body}
    return _line(custom_id, response, {"code": code, "message": message}, host, attempts)


def _line(
    custom_id: str,
    response: dict[str, Any] | None,
    error: dict[str, str] | None,
    host: str | None,
    attempts: int,
) -> bytes:
    record = {
        "id": new_id(),
        "custom_id": custom_id,
        "response": response,
        "error": error,
        "host": host,
        "attempts": attempts,
    }
    return compact(record) + b"\n"


def is_success(record: Any) -> bool:
    """Whether a parsed output line is a job that succeeded (`error` null, a response)."""
    return (
        type(record) is dict
        and "error" in record
        and record["error"] is None
        and type(record.get("response")) is dict
        and type(record.get("custom_id")) is str
    )


class Assembler:
    """Folds a /api/generate or /api/chat stream into the answer `"stream": false`
    would have given (Ollama's server does the same fold): the last (`done`) object,
    with `response` (generate) or `message.content` (chat) the whole text, `thinking`
    the whole thinking (absent when there was none), chat `tool_calls` every call of
    every chunk, `logprobs` all of them in order (absent when none came)."""

    def __init__(self, kind: Literal["generate", "chat"]) -> None:
        self._chat = kind == "chat"
        self._content: list[str] = []
        self._thinking: list[str] = []
        self._tool_calls: list[Any] = []
        self._logprobs: list[Any] = []
        self.done: dict[str, Any] | None = None

    def add(self, obj: dict[str, Any]) -> bool:
        """Take one object of the stream; True when it was the last (`done: true`).

        Raises ServerError for an `{"error": ...}` object (what a server sends
        when it fails mid-stream)."""
        if obj.get("error") is not None:
            raise ServerError(error_text(obj["error"]))
        source = obj.get("message") if self._chat else obj
        if type(source) is dict:
            _take(self._content, source.get("content" if self._chat else "response"))
            _take(self._thinking, source.get("thinking"))
            calls = source.get("tool_calls") if self._chat else None
            if type(calls) is list:
                self._tool_calls.extend(calls)
        logprobs = obj.get("logprobs")
        if type(logprobs) is list:
            self._logprobs.extend(logprobs)
        if obj.get("done") is not True:
            return False
        self.done = obj
        return True

    def body(self) -> dict[str, Any]:
        """The assembled answer; ProtocolError when the stream had no `done: true`."""
        if self.done is None:
            raise ProtocolError("the stream ended before the model finished")
        body = dict(self.done)
        if self._chat:
            message = body.get("message")
            message = dict(message) if type(message) is dict else {"role": "assistant"}
            _put(message, "content", "".join(self._content), always=True)
            _put(message, "thinking", "".join(self._thinking))
            _put(message, "tool_calls", self._tool_calls)
            body["message"] = message
        else:
            _put(body, "response", "".join(self._content), always=True)
            _put(body, "thinking", "".join(self._thinking))
        _put(body, "logprobs", self._logprobs)
        return body

    def run(self, chunks: Iterable[bytes]) -> dict[str, Any]:
        """The assembled answer of a response body, read in chunks of any size, framed
        as every stream is (ndjson); stops reading at `done`. Raises ServerError
        for an error line and ProtocolError for a line that is not JSON or a
        stream that ends too soon."""
        framer = LineFramer()
        for data in chunks:
            block = framer.feed(data)
            if block is not None and self._block(block):
                return self.body()
        tail = framer.rest()
        if tail:
            self._block(tail)
        return self.body()

    def _block(self, block: bytes) -> bool:
        objects, bad = parse_block(block)
        for obj in objects:
            if self.add(obj):
                return True
        if bad is not None:
            raise bad
        return False


def _take(pieces: list[str], value: Any) -> None:
    if type(value) is str and value:
        pieces.append(value)


def _put(target: dict[str, Any], key: str, value: Any, *, always: bool = False) -> None:
    """Set `key` to `value`, or drop it when empty, as Go's omitempty does."""
    if value or always:
        target[key] = value
    else:
        target.pop(key, None)

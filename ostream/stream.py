"""The stream engine: network reads → lines → objects → the writer, one write per read."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ostream.errors import ProtocolError, ServerError
from ostream.ndjson import LineFramer, parse
from ostream.output import Writer

Kind = Literal["generate", "chat"]


@dataclass
class Reply:
    """What one streamed answer amounted to."""

    done: dict[str, Any] | None = None
    content: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    tool_calls: list[Any] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        """The whole assistant message, as a chat history stores it."""
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content)}
        if self.thinking:
            message["thinking"] = "".join(self.thinking)
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message


class Streamer:
    """Turns a generate or chat stream into output, line by line, as it arrives."""

    def __init__(
        self, kind: Kind, writer: Writer, *, jsonl: bool, show_thinking: bool, keep: bool
    ) -> None:
        self.kind = kind
        self.writer = writer
        self.jsonl = jsonl
        self.show_thinking = show_thinking and not jsonl
        self.keep = keep
        self.reply = Reply()

    def run(self, chunks: Iterable[bytes]) -> Reply:
        """Consume the body; return once the `done` object has been handled.

        Raises ServerError for an `{"error": ...}` line and ProtocolError for a
        stream that ends without `done: true`.
        """
        framer = LineFramer()
        for data in chunks:
            lines = framer.feed(data)
            if lines and self._batch(lines):
                return self.reply
        tail = framer.rest()
        if tail and self._batch([tail]):
            return self.reply
        raise ProtocolError("the stream ended before the model finished")

    def _batch(self, lines: list[bytes]) -> bool:
        """Handle the lines of one network read; True once `done` was seen."""
        objects: list[dict[str, Any]] = []
        passed: list[bytes] = []
        finished = False
        failure: str | None = None
        for line in lines:
            obj = parse(line)
            if obj is None:
                continue
            objects.append(obj)
            passed.append(line)
            if "error" in obj:
                failure = _error_text(obj["error"])
                break
            if obj.get("done") is True:
                self.reply.done = obj
                finished = True
                break
        if self.jsonl and passed:
            self.writer.line(b"\n".join(line.rstrip(b"\r") for line in passed))
            if self.keep:
                for obj in objects:
                    self._collect(obj)
        else:
            self._render(objects)
        if failure is not None:
            raise ServerError(failure)
        return finished

    def _render(self, objects: list[dict[str, Any]]) -> None:
        pieces: list[str] = []
        for obj in objects:
            if "error" in obj:
                continue
            text, thinking, calls = self._fields(obj)
            if thinking:
                if self.keep:
                    self.reply.thinking.append(thinking)
                if self.show_thinking:
                    self._flush(pieces)
                    self.writer.thinking(thinking)
            if text:
                pieces.append(text)
                if self.keep:
                    self.reply.content.append(text)
            if calls:
                self._flush(pieces)
                for call in calls:
                    self.reply.tool_calls.append(call)
                    self.writer.line(_tool_call_line(call))
        self._flush(pieces)

    def _collect(self, obj: dict[str, Any]) -> None:
        text, thinking, calls = self._fields(obj)
        if text:
            self.reply.content.append(text)
        if thinking:
            self.reply.thinking.append(thinking)
        if calls:
            self.reply.tool_calls.extend(calls)

    def _fields(self, obj: dict[str, Any]) -> tuple[Any, Any, Any]:
        if self.kind == "generate":
            return obj.get("response"), obj.get("thinking"), None
        message = obj.get("message")
        if type(message) is not dict:
            return None, None, None
        return message.get("content"), message.get("thinking"), message.get("tool_calls")

    def _flush(self, pieces: list[str]) -> None:
        if pieces:
            self.writer.text("".join(p for p in pieces if type(p) is str))
            pieces.clear()


def _tool_call_line(call: Any) -> bytes:
    function = call.get("function", call) if isinstance(call, dict) else call
    if isinstance(function, dict):
        shown = {"name": function.get("name"), "arguments": function.get("arguments", {})}
    else:
        shown = {"name": None, "arguments": function}
    return json.dumps({"tool_call": shown}, ensure_ascii=False, separators=(",", ":")).encode()


def _error_text(error: Any) -> str:
    return error if isinstance(error, str) else json.dumps(error, ensure_ascii=False)


def copy_raw(chunks: Iterable[bytes], writer: Writer) -> str | None:
    """Copy a body to stdout byte for byte, whole lines at a time as they arrive.

    Returns the first `{"error": ...}` line's message, if any.
    """
    pending: list[bytes] = []
    failure: str | None = None
    for data in chunks:
        end = data.rfind(b"\n") + 1
        if not end:
            pending.append(data)
            continue
        pending.append(data[:end])
        out = b"".join(pending)
        pending = [data[end:]] if end < len(data) else []
        writer.raw(out)
        if failure is None and b'"error"' in out:
            failure = _find_error(out)
    rest = b"".join(pending)
    writer.raw(rest)
    if failure is None and b'"error"' in rest:
        failure = _find_error(rest)
    return failure


def _find_error(data: bytes) -> str | None:
    for line in data.split(b"\n"):
        if b'"error"' not in line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "error" in obj:
            return _error_text(obj["error"])
    return None

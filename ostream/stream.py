"""The stream engine: network reads → lines → objects → the writer, one write per read."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ostream.errors import ProtocolError, ServerError
from ostream.ndjson import LineFramer, compact, error_text, parse_block
from ostream.output import Writer

Kind = Literal["generate", "chat"]

ENDED_EARLY = "the stream ended before the model finished"


@dataclass
class Reply:
    """What one streamed answer amounted to."""

    done: dict[str, Any] | None = None
    content: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    tool_calls: list[Any] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        """The whole assistant message, as a chat history stores it."""
        message: dict[str, Any] = {"role": "assistant", "content": _join(self.content)}
        if self.thinking:
            message["thinking"] = _join(self.thinking)
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message


def _join(pieces: list[Any]) -> str:
    """The text of the fragments, skipping any that a broken server sent as non-strings."""
    return "".join(p for p in pieces if type(p) is str)


class Streamer:
    """Turns a generate or chat stream into output, line by line, as it arrives."""

    def __init__(
        self, kind: Kind, writer: Writer, *, jsonl: bool, show_thinking: bool, keep: bool
    ) -> None:
        self.writer = writer
        self.jsonl = jsonl
        self.show_thinking = show_thinking and not jsonl
        self.keep = keep
        self.reply = Reply()
        self._fields = _chat_fields if kind == "chat" else _generate_fields

    def run(self, chunks: Iterable[bytes]) -> Reply:
        """Consume the body; return once the `done` object has been handled.

        Raises ServerError for an `{"error": ...}` line and ProtocolError for a
        stream that ends without `done: true`.
        """
        framer = LineFramer()
        for data in chunks:
            block = framer.feed(data)
            if block is not None and self._block(block):
                return self.reply
        tail = framer.rest()
        if tail and self._block(tail):
            return self.reply
        raise ProtocolError(ENDED_EARLY)

    def _block(self, block: bytes) -> bool:
        """Handle the whole lines of one network read; True once `done` was seen.

        What came before a bad line, `done` or `error` is written first; nothing
        after them counts (a server sends nothing more).
        """
        objects, bad = parse_block(block)
        stop = None
        if b"true" in block or b'"error"' in block:  # cheap: most blocks hold neither
            stop = next(
                (
                    i
                    for i, obj in enumerate(objects)
                    if obj.get("error") is not None or obj.get("done") is True
                ),
                None,
            )
        if stop is not None:
            del objects[stop + 1 :]
            bad = None
        if self.jsonl:
            self._pass_through(block, objects)
            if self.keep:
                for obj in objects:
                    self._collect(obj)
        else:
            self._render(objects, last=stop is not None and objects[-1].get("error") is None)
        if bad is not None:
            raise bad
        if stop is None:
            return False
        last = objects[-1]
        if last.get("error") is not None:
            raise ServerError(error_text(last["error"]))
        self.reply.done = last
        return True

    def _pass_through(self, block: bytes, objects: list[dict[str, Any]]) -> None:
        """The server's own lines, unchanged when they are compact (Ollama's are)."""
        if not objects:
            return
        newline = block.find(b"\n")
        if (
            len(objects) != block.count(b"\n") + 1
            or b"\r" in block
            or b'": ' in block
            or b'", ' in block
            or b"\n " in block
            or b"\n\t" in block
            or block[:1].isspace()
            or block[-1:].isspace()
            # A server spaces all its lines or none: the first one tells, cheaply.
            or _spaced(block if newline < 0 else block[:newline])
        ):
            # Rare: blank lines, CRs, a line not taken, or JSON with spaces (a proxy,
            # a gateway). Keep each compact line, re-encode the others compactly.
            lines = [line.strip() for line in block.split(b"\n") if line.strip()]
            block = b"\n".join(
                compact(obj) if _spaced(line) else line
                for line, obj in zip(lines, objects, strict=False)
            )
        self.writer.line(block)

    def _render(self, objects: list[dict[str, Any]], *, last: bool) -> None:
        """Write the objects of one read; `last`: nothing follows them, so the answer's
        final newline goes out in the same write as its last text (two answers into
        one pipe, as under `xargs -P`, then never share a line)."""
        pieces: list[str] = []
        fields = self._fields
        for obj in objects:
            text, thinking, calls = fields(obj)
            if thinking and type(thinking) is str:
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
                for call in calls if type(calls) is list else [calls]:
                    self.reply.tool_calls.append(call)
                    self.writer.line(_tool_call_line(call))
        self._flush(pieces, last=last)

    def _collect(self, obj: dict[str, Any]) -> None:
        text, thinking, calls = self._fields(obj)
        if text:
            self.reply.content.append(text)
        if thinking:
            self.reply.thinking.append(thinking)
        if calls:
            self.reply.tool_calls.extend(calls if type(calls) is list else [calls])

    def _flush(self, pieces: list[str], *, last: bool = False) -> None:
        if pieces:
            try:
                text = "".join(pieces)
            except TypeError:  # a server sent a non-string fragment: skip it
                text = _join(pieces)
            self.writer.text(text, last=last)
            pieces.clear()


def _generate_fields(obj: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(text, thinking, tool calls) of a generate chunk."""
    return obj.get("response"), obj.get("thinking"), None


def _chat_fields(obj: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(text, thinking, tool calls) of a chat chunk."""
    message = obj.get("message")
    if type(message) is not dict:
        return None, None, None
    return message.get("content"), message.get("thinking"), message.get("tool_calls")


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _spaced(line: bytes) -> bool:
    """Whether the line has white space between its tokens (not inside its strings)."""
    bare = _STRING.sub(b"", line)
    return b" " in bare or b"\t" in bare


def _tool_call_line(call: Any) -> bytes:
    function = call.get("function", call) if isinstance(call, dict) else call
    if isinstance(function, dict):
        shown = {"name": function.get("name"), "arguments": function.get("arguments", {})}
    else:
        shown = {"name": None, "arguments": function}
    return compact({"tool_call": shown})

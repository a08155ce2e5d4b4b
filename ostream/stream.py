"""The stream engine: network reads → lines → objects → the writer, one write per read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ostream.errors import ProtocolError, ServerError
from ostream.ndjson import (
    LineFramer,
    compact,
    compact_line,
    compact_object,
    error_text,
    parse_block,
    spaced,
)
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
        self,
        kind: Kind,
        writer: Writer,
        *,
        jsonl: bool,
        show_thinking: bool,
        keep: bool,
        reply: Reply | None = None,
    ) -> None:
        self.writer = writer
        self.jsonl = jsonl
        self.show_thinking = show_thinking and not jsonl
        self.keep = keep
        # The caller's Reply, if given, holds what came even when the stream breaks.
        self.reply = reply if reply is not None else Reply()
        self._fields = _chat_fields if kind == "chat" else _generate_fields

    def run(self, chunks: Iterable[bytes]) -> Reply:
        """Consume the body; return once the `done` object has been handled.

        Raises ServerError for an `{"error": ...}` line and ProtocolError for a
        stream that ends without `done: true`.
        """
        framer = LineFramer()
        # Looked up once: this loop runs per chunk.
        feed, handle = framer.feed, self._line_block if self.jsonl else self._block
        for data in chunks:
            block = feed(data)
            if block is not None and handle(block):
                return self.reply
        tail = framer.rest()
        if tail and self._block(tail):
            return self.reply
        raise ProtocolError(ENDED_EARLY)

    def _line_block(self, block: bytes) -> bool:
        """--jsonl's `_block`, with a shortcut for Ollama's case: one compact line a read,
        validated as one JSON object and passed on as it came, nothing re-encoded."""
        obj = compact_object(block)
        if obj is None:  # several lines, white space, or not JSON: the general path
            return self._block(block)
        self.writer.lines(block)
        if self.keep:
            self._collect(obj)
        if obj.get("error") is not None:
            raise ServerError(error_text(obj["error"]))
        if obj.get("done") is True:
            self.reply.done = obj
            return True
        return False

    def _block(self, block: bytes) -> bool:
        """Handle the whole lines of one network read; True once `done` was seen.

        What came before a bad line, `done` or `error` is written first; nothing
        after them counts (a server sends nothing more).
        """
        objects, bad = parse_block(block)
        stop = None
        if len(objects) == 1:  # Ollama's one line a chunk
            if objects[0].get("done") is True or objects[0].get("error") is not None:
                stop = 0
        elif b"true" in block or b'"error"' in block:  # cheap: most blocks hold neither
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
        """The server's own lines, byte for byte but for white space between tokens."""
        if not objects:
            return
        newlines = block.count(b"\n")
        if len(objects) != newlines + 1 or spaced(block, lines=newlines > 0):
            # Rare: blank lines, a line not taken, or white space to drop (a proxy, a
            # gateway): each line that parsed, compacted on its own.
            lines = [line for line in block.split(b"\n") if line.strip(b" \t\r\n")][: len(objects)]
            block = b"\n".join(compact_line(line) for line in lines)
        self.writer.lines(block)

    def _render(self, objects: list[dict[str, Any]], *, last: bool) -> None:
        """Write the objects of one read; `last`: nothing follows them, so the answer's
        final newline goes out in the same write as its last text (two answers into
        one pipe, as under `xargs -P`, then never share a line)."""
        fields = self._fields
        if len(objects) == 1:  # the common case, Ollama's one line a chunk: a shortcut
            text, thinking, calls = fields(objects[0])
            if not thinking and not calls and type(text) is str:
                if text:
                    if self.keep:
                        self.reply.content.append(text)
                    self.writer.text(text, last=last)
                return
        pieces: list[str] = []
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


def _tool_call_line(call: Any) -> bytes:
    function = call.get("function", call) if isinstance(call, dict) else call
    if isinstance(function, dict):
        shown = {"name": function.get("name"), "arguments": function.get("arguments", {})}
    else:
        shown = {"name": None, "arguments": function}
    return compact({"tool_call": shown})

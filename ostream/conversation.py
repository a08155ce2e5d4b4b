"""Conversations from files and stdin: JSONL, objects one after another (jq's pretty
output), or a JSON array; errors name the file, the line and the field."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ostream.errors import UsageError
from ostream.inputs import file_bytes, piped_bytes, text
from ostream.jsontext import invalid_json, raw_decode, undecodable

_SPACE = re.compile(r"[ \t\n\r]*")


def parse_messages(data: bytes, source: str, *, array: bool = True) -> list[dict[str, Any]]:
    """The messages in `data`; `source` (`--messages talk.jsonl`) starts every message.

    Lone surrogate escapes become U+FFFD (what ostream 0.1.0 could write for a
    broken reply); bytes that are not UTF-8 are refused, naming the field.
    """
    try:
        decoded = text(data, source)
    except UsageError as exc:
        raise UsageError(_bad_bytes_message(data, source) or exc.message) from None
    messages = []
    for line, value in json_values(decoded, source, array=array):
        if not isinstance(value, dict) or not isinstance(value.get("role"), str):
            raise UsageError(f"{source}:{line}: a message must be an object with a 'role'")
        messages.append(value)
    return messages


def json_values(source_text: str, source: str, *, array: bool) -> Iterator[tuple[int, Any]]:
    """Each JSON value with the line it starts on: values one after another, whatever
    the white space between them, or (if `array`) the items of one JSON array."""
    line, seen = 1, 0
    pos = _SPACE.match(source_text).end()  # type: ignore[union-attr]
    in_array = source_text.startswith("[", pos)
    if in_array:
        if not array:
            raise UsageError(f"{source}: a JSON array; one message a line (JSONL) is needed here")
        end = _decode(source_text, pos, source, 1)[1]  # the whole array: its syntax errors
        rest = _SPACE.match(source_text, end).end()  # type: ignore[union-attr]
        if rest < len(source_text):
            line = 1 + source_text.count("\n", 0, rest)
            raise UsageError(f"{source}:{line}: invalid JSON: more after the array")
        pos = _SPACE.match(source_text, pos + 1).end()  # type: ignore[union-attr]
    while pos < len(source_text) and not (in_array and source_text[pos] == "]"):
        line += source_text.count("\n", seen, pos)
        seen = pos
        value, end = _decode(source_text, pos, source, line)
        yield line, value
        pos = _SPACE.match(source_text, end).end()  # type: ignore[union-attr]
        if in_array and source_text.startswith(",", pos):
            pos = _SPACE.match(source_text, pos + 1).end()  # type: ignore[union-attr]


def _decode(source_text: str, pos: int, source: str, line: int) -> tuple[Any, int]:
    """The value at `pos`, which starts on `line`; an error names that line."""
    try:
        return raw_decode(source_text, pos)
    except ValueError as exc:
        raise invalid_json(source, exc, line) from None


def _bad_bytes_message(data: bytes, source: str) -> str | None:
    """`source:LINE: FIELD is not valid UTF-8` for the first message holding such bytes."""
    try:
        for line, value in json_values(data.decode("utf-8", "surrogateescape"), source, array=True):
            field = _undecodable_field(value, "")
            if field is not None:
                return f"{source}:{line}: {field or 'the line'} is not valid UTF-8"
    except UsageError:
        pass
    return None


def _undecodable_field(value: Any, path: str) -> str | None:
    """The path (`content`, `tool_calls[0].function.name`) of the first string holding
    bytes that are not UTF-8."""
    if isinstance(value, str):
        return path if undecodable(value) else None
    if not isinstance(value, (dict, list)):
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(key, str) and undecodable(key):
            return f"a key in {path}" if path else "a key"
        inner = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}".lstrip(".")
        found = _undecodable_field(item, inner)
        if found is not None:
            return found
    return None


def load_conversation(
    messages: str | None, history: Path | None, stdin: Any, environ: Mapping[str, str]
) -> list[Any]:
    """The conversation sent before the new message: --messages FILE|-, or --history."""
    from ostream.history import read_history

    if messages == "-":
        return parse_messages(
            piped_bytes(stdin, "--messages", "conversation", environ), "--messages -"
        )
    if messages is not None:
        return parse_messages(file_bytes(messages, "--messages", environ), f"--messages {messages}")
    if history is not None:
        return read_history(history, environ)
    return []


def user_turn(words: str | None, images: list[str]) -> list[dict[str, Any]]:
    """The new user message (none without text), carrying the images."""
    if words is None:
        if images:
            raise UsageError("--image needs a message to attach to")
        return []
    user: dict[str, Any] = {"role": "user", "content": words}
    if images:
        user["images"] = images
    return [user]

"""Bytes from the network, in reads of any size, framed into lines on b"\\n" only."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from json.scanner import make_scanner
from typing import Any

from ostream.errors import ProtocolError
from ostream.jsontext import refuse_constant

EXCERPT = 80


class LineFramer:
    """Splits a byte stream into lines, whatever the boundaries of the reads.

    A line that spans many reads is kept as a list of parts and joined once,
    so a 50 MB line costs one copy, not one per read. Bytes are never decoded
    here: a multi-byte character split across reads is whole again once its
    line is.
    """

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def feed(self, data: bytes) -> bytes | None:
        """The lines that `data` completes, as one block joined by b"\\n" (without the
        last one), or None when no line was completed. Blank lines are kept."""
        end = data.rfind(b"\n")
        if end < 0:
            if data:
                self._parts.append(data)
            return None
        if self._parts:
            self._parts.append(data[:end])
            block = b"".join(self._parts)
            self._parts = []
        else:
            block = data[:end]
        if end + 1 < len(data):
            self._parts.append(data[end + 1 :])
        return block

    def rest(self) -> bytes:
        """What came after the last b"\\n" (a final line without one), and forget it."""
        data = b"".join(self._parts)
        self._parts = []
        return data


# Python's json takes NaN, Infinity and -Infinity; a server line holding one is not JSON.
_STRICT: dict[str, Any] = {"parse_constant": refuse_constant}
# The C scanner json.loads uses, without its per-call overhead (encoding detection, checks).
_scan: Callable[[str, int], tuple[Any, int]] = make_scanner(json.JSONDecoder(**_STRICT))  # type: ignore[arg-type]
_WHITE = b" \t\r\n"  # JSON's white space
_WHITE_TEXT = " \t\r\n"  # JSON's white space (str.isspace() takes \v, \x1c, \x85 ... too)


def parse_block(block: bytes) -> tuple[list[dict[str, Any]], ProtocolError | None]:
    """The objects of a block of NDJSON lines, blank lines skipped, up to the first
    line that is not one JSON object, whose error comes second.

    The block is decoded once (a b"\\n" never occurs inside a UTF-8 sequence, so
    a block of whole lines is whole characters); any line the fast path does
    not take as one JSON object is handed to `parse`, which explains it.
    """
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        lines: list[Any] = block.split(b"\n")
    else:
        if "\n" not in text:  # one line, as Ollama sends them: a shortcut
            try:
                obj, end = _scan(text, 0)
            except (StopIteration, ValueError, TypeError):
                end = -1
            if end == len(text) and type(obj) is dict:
                return [obj], None
        lines = text.split("\n")
    objects: list[dict[str, Any]] = []
    append = objects.append
    for line in lines:
        try:
            obj, end = _scan(line, 0)
        except (StopIteration, ValueError, TypeError):
            obj, end = None, -1
        if type(obj) is not dict or (end != len(line) and line[end:].strip(_WHITE_TEXT)):
            try:
                obj = parse(line.encode("utf-8") if type(line) is str else line)
            except ProtocolError as exc:
                return objects, exc
            if obj is None:
                continue
        append(obj)
    return objects, None


_TOUCHING = "{}[],:"  # a space next to one is between tokens, or a false alarm in a string


def compact_object(block: bytes) -> dict[str, Any] | None:
    """`block` as a JSON object when it is one line of one object with no white space
    between its tokens (what Ollama sends), cheaply; None for anything else (also for
    such a line with a string that merely looks spaced): parse_block decides then.
    """
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # The strict scanner takes no raw \t, \r or \n inside a string: these are white
    # space between lines or tokens. Two values are never adjacent, so a space between
    # tokens touches one of `{}[],:` (or the line's start or end: "" is in any string).
    if "\n" in text or "\t" in text or "\r" in text:
        return None
    at = text.find(" ")  # one-character searches: far cheaper than a search for pairs
    if at >= 0:  # Ollama's lines hold one space or none: the first is checked here
        if text[at - 1 : at] in _TOUCHING or text[at + 1 : at + 2] in _TOUCHING:
            return None
        if text.find(" ", at + 1) >= 0 and spaced(block):  # more: one scan in C
            return None
    try:
        obj, end = _scan(text, 0)
    except (StopIteration, ValueError, TypeError):
        return None
    return obj if end == len(text) and type(obj) is dict else None


def parse(line: bytes) -> dict[str, Any] | None:
    """One NDJSON line as an object, None for a blank line; anything else is a protocol error."""
    try:
        obj = json.loads(line, **_STRICT)
    except ValueError:
        if not line.strip(_WHITE):
            return None
        raise ProtocolError(f"the server sent a line that is not JSON: {excerpt(line)}") from None
    if type(obj) is not dict:
        raise ProtocolError(f"the server sent a line that is not a JSON object: {excerpt(line)}")
    return obj


def excerpt(data: bytes, limit: int = EXCERPT) -> str:
    """The start of `data` as one short quoted line, for messages."""
    text = " ".join(data[: limit * 4].decode("utf-8", "replace").split())
    more = len(text) > limit or len(data) > limit * 4
    return repr(text[:limit] + ("…" if more else ""))


def json_object(data: bytes) -> dict[str, Any] | None:
    """`data` as one JSON object, or None when it is anything else."""
    try:
        obj = json.loads(data, **_STRICT)
    except ValueError:
        return None
    return obj if type(obj) is dict else None


# Byte classes for `spaced`: JSON's structural characters, its white space, the rest.
_STRUCTURAL = frozenset(b"{}[],:")
_CLASSES = b"".join(b"S" if c in _STRUCTURAL else b"W" if c in _WHITE else b"x" for c in range(256))
_LINE_CLASSES = _CLASSES[:10] + b"x" + _CLASSES[11:]  # the same, but b"\n" is x
_STRINGS = re.compile(rb'("[^"\\]*(?:\\.[^"\\]*)*")')


def spaced(line: bytes, *, lines: bool = False) -> bool:
    """Whether valid JSON `line` may have white space between its tokens; False means
    surely none, cheaply. With `lines`, `line` is NDJSON lines, and the newlines that
    separate them do not count.

    Two values are never adjacent in JSON, so white space between tokens always
    touches one of `{}[],:`; the text inside strings may only cause a false alarm.
    """
    if lines:
        classes = line.translate(_LINE_CLASSES)
        return b"SW" in classes or b"WS" in classes
    parts = line.split()  # the runs between white space (b"\v\f" too: never in JSON)
    if len(parts) > 8:  # many: a scan in C beats a loop in Python
        classes = line.translate(_CLASSES)
        return b"SW" in classes or b"WS" in classes
    if len(parts) <= 1:
        return bool(parts) and len(parts[0]) != len(line)
    if line[:1].isspace() or line[-1:].isspace():
        return True
    before = parts[0][-1]
    for part in parts[1:]:
        if before in _STRUCTURAL or part[0] in _STRUCTURAL:
            return True
        before = part[-1]
    return False


def compact_line(line: bytes) -> bytes:
    """Valid JSON `line` without the white space between its tokens: the bytes of its
    strings (escapes as sent) and numbers (1e400, 1.50) and any duplicate keys stay."""
    if not spaced(line):
        return line
    parts = _STRINGS.split(line)  # outside, string, outside, ..., outside
    parts[::2] = [part.translate(None, _WHITE) for part in parts[::2]]
    return b"".join(parts)


def compact(obj: Any) -> bytes:
    """One compact JSON line's bytes (no newline), characters kept as they are."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (from a \ud83d escape): keep it escaped
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


def error_text(error: Any) -> str:
    """The message of an `{"error": ...}` object."""
    return error if isinstance(error, str) else json.dumps(error, ensure_ascii=False)

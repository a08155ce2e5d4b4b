"""Bytes from the network, in reads of any size, framed into lines on b"\\n" only."""

from __future__ import annotations

import json
from typing import Any

from ostream.errors import ProtocolError

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

    def feed(self, data: bytes) -> list[bytes]:
        """The lines completed by `data`, without their b"\\n" (blank ones included)."""
        if b"\n" not in data:
            if data:
                self._parts.append(data)
            return []
        lines = data.split(b"\n")
        if self._parts:
            self._parts.append(lines[0])
            lines[0] = b"".join(self._parts)
            self._parts = []
        tail = lines.pop()
        if tail:
            self._parts.append(tail)
        return lines

    def rest(self) -> bytes:
        """What came after the last b"\\n" (a final line without one), and forget it."""
        data = b"".join(self._parts)
        self._parts = []
        return data


def parse(line: bytes) -> dict[str, Any] | None:
    """One NDJSON line as an object, None for a blank line; anything else is a protocol error."""
    try:
        obj = json.loads(line)
    except ValueError:
        if not line.strip():
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

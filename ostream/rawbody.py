"""raw's body: copied to stdout byte for byte, and judged only where it can be."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ostream.errors import ProtocolError
from ostream.ndjson import LineFramer, error_text, json_object, parse_block
from ostream.output import Writer


@dataclass
class RawBody:
    """What `copy_raw` saw: the first `{"error": ...}` message and the last lines."""

    error: str | None = None
    last_line: bytes = b""  # the last complete non-blank line
    tail: bytes = b""  # what followed the last newline
    bad: ProtocolError | None = None  # the first line of an NDJSON body that is not JSON

    def unfinished(self) -> bool:
        """A stream of objects with `done` that ended before one with `done: true`.

        A tail that is not JSON was cut mid-line: the line before it decides.
        Bodies without `done` (/api/tags, /api/pull) or not JSON are not judged.
        """
        tail = self.tail.strip()
        obj = json_object(tail) if tail else None
        if obj is None:
            obj = json_object(self.last_line) if b'"done"' in self.last_line else None
        return obj is not None and "done" in obj and obj["done"] is not True


def copy_raw(chunks: Iterable[bytes], writer: Writer, *, ndjson: bool = False) -> RawBody:
    """Copy a body to stdout byte for byte, whole lines at a time as they arrive.

    When the connection breaks, the part of a line already received is written too.
    An `ndjson` body (the streaming endpoints) also has each line checked as JSON.
    """
    framer = LineFramer()
    seen = RawBody()
    try:
        for data in chunks:
            block = framer.feed(data)
            if block is None:
                continue
            writer.raw(block + b"\n")
            if seen.error is None and b'"error"' in block:
                seen.error = _find_error(block)
            if ndjson and seen.bad is None:
                seen.bad = parse_block(block)[1]
            _note_last_line(seen, block)
    except Exception as exc:
        if not isinstance(exc, BrokenPipeError):
            writer.raw(framer.rest())
        raise
    seen.tail = framer.rest()
    writer.raw(seen.tail)
    if seen.error is None and b'"error"' in seen.tail:
        seen.error = _find_error(seen.tail)
    if ndjson and seen.bad is None:
        seen.bad = parse_block(seen.tail)[1]
    return seen


def _note_last_line(seen: RawBody, block: bytes) -> None:
    line = block[block.rfind(b"\n") + 1 :]
    if line.strip():
        seen.last_line = line
    elif block.strip():  # blank lines at the end of the block: look further back
        seen.last_line = block.rstrip().rsplit(b"\n", 1)[-1]


def _find_error(data: bytes) -> str | None:
    for line in data.split(b"\n"):
        if b'"error"' in line:
            obj = json_object(line)
            if obj is not None and obj.get("error") is not None:
                return error_text(obj["error"])
    return None

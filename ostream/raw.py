"""raw's two bodies: the request, checked to be JSON before it is sent; the response,
copied to stdout byte for byte and judged only where it can be."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ostream.errors import ProtocolError, UsageError
from ostream.inputs import file_bytes, piped_bytes, stdin_bytes, without_bom
from ostream.jsontext import problem, strict_json
from ostream.ndjson import LineFramer, error_text, json_object, parse_block
from ostream.output import Writer


def request_body(data: str | None, stdin: Any, environ: Mapping[str, str]) -> bytes | None:
    """raw's request body, checked to be UTF-8 JSON; None (a GET) when there is none."""
    body: bytes | None
    if data == "-":
        body = without_bom(piped_bytes(stdin, "-d", "body", environ))
        if not body:
            raise UsageError("-d -: stdin is empty")
    elif data is None:
        body = without_bom(stdin_bytes(stdin, environ) or b"") or None
    elif data.startswith("@"):
        # A file's JSON may start with a byte order mark (RFC 8259).
        body = without_bom(file_bytes(data[1:], "--data", environ))
    else:
        try:
            body = data.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError("-d: the body is not valid UTF-8") from None
    if body is not None:
        # Unasked-for stdin (a `while read` loop's input, say) is the likely mistake.
        hint = "; it was read from stdin, which is not a terminal: give -d, or </dev/null"
        hint = hint if data is None else ""
        try:
            strict_json(body.decode("utf-8"))  # not bytes: json.loads would take UTF-16
        except UnicodeDecodeError:
            raise UsageError("the request body is not valid UTF-8" + hint) from None
        except ValueError as exc:
            raise UsageError(
                f"the request body is not valid JSON: {problem(exc, 1)}{hint}"
            ) from None
    return body


@dataclass
class RawResponse:
    """What `copy_response` saw of raw's response: the first `{"error": ...}` message
    and the last lines."""

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


def copy_response(chunks: Iterable[bytes], writer: Writer, *, ndjson: bool = False) -> RawResponse:
    """Copy a body to stdout byte for byte (on a terminal, safely: Writer.body), whole
    lines at a time as they arrive.

    When the connection breaks, the part of a line already received is written too.
    An `ndjson` body (the streaming endpoints) also has each line checked as JSON.
    """
    framer = LineFramer()
    response = RawResponse()
    try:
        for data in chunks:
            block = framer.feed(data)
            if block is None:
                continue
            writer.body(block + b"\n")
            if response.error is None and b'"error"' in block:
                response.error = _find_error(block)
            if ndjson and response.bad is None:
                response.bad = parse_block(block)[1]
            _note_last_line(response, block)
    except Exception as exc:
        if not isinstance(exc, BrokenPipeError):
            writer.body(framer.rest())
        raise
    response.tail = framer.rest()
    writer.body(response.tail)
    if response.error is None and b'"error"' in response.tail:
        response.error = _find_error(response.tail)
    if ndjson and response.bad is None:
        response.bad = parse_block(response.tail)[1]
    return response


def _note_last_line(response: RawResponse, block: bytes) -> None:
    line = block[block.rfind(b"\n") + 1 :]
    if line.strip():
        response.last_line = line
    elif block.strip():  # blank lines at the end of the block: look further back
        response.last_line = block.rstrip().rsplit(b"\n", 1)[-1]


def _find_error(data: bytes) -> str | None:
    for line in data.split(b"\n"):
        if b'"error"' in line:
            obj = json_object(line)
            if obj is not None and obj.get("error") is not None:
                return error_text(obj["error"])
    return None

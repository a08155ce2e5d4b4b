"""Where the input comes from: the prompt (piped stdin first, the argument words last),
and raw's request body (-d JSON|@file|-, or piped stdin)."""

from __future__ import annotations

from typing import Any

from ostream.errors import UsageError
from ostream.inputs import file_bytes, piped_bytes, stdin_bytes, stdin_text, without_bom
from ostream.options import strict_json


def read_stdin(stdin: Any) -> str | None:
    """All of stdin as UTF-8 when it is not a terminal; None when it is, or is empty."""
    return stdin_text(stdin)


def assemble(piped: str | None, words: list[str]) -> str | None:
    """The prompt: `piped` and the words joined by one blank line; None if neither."""
    # An empty word list or only empty words (an unset "$PROMPT") is no prompt.
    spoken = " ".join(words) if any(words) else None
    if piped is not None and spoken is not None:
        return piped.rstrip("\n") + "\n\n" + spoken
    return piped if piped is not None else spoken


def raw_body(data: str | None, stdin: Any) -> bytes | None:
    """raw's body, checked to be UTF-8 JSON; None (a GET) when there is none."""
    body: bytes | None
    if data == "-":
        body = without_bom(piped_bytes(stdin, "-d", "body"))
        if not body:
            raise UsageError("-d -: stdin is empty")
    elif data is None:
        body = without_bom(stdin_bytes(stdin) or b"") or None
    elif data.startswith("@"):
        body = without_bom(file_bytes(data[1:], "--data"))  # JSON may start with one (RFC 8259)
    else:
        try:
            body = data.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError("-d: the body is not valid UTF-8") from None
    if body is not None:
        try:
            strict_json(body.decode("utf-8"))  # not bytes: json.loads would take UTF-16
        except UnicodeDecodeError:
            raise UsageError("the request body is not valid UTF-8") from None
        except ValueError as exc:
            raise UsageError(f"the request body is not valid JSON: {exc}") from None
    return body

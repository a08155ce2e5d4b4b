"""Where the input comes from: the prompt (piped stdin first, the argument words last),
and raw's request body (-d JSON|@file|-, or piped stdin)."""

from __future__ import annotations

from typing import Any

from ostream.errors import UsageError
from ostream.options import read_bytes, strict_json


def read_stdin(stdin: Any) -> str | None:
    """All of stdin as UTF-8 when it is not a terminal; None when it is, or is empty."""
    if stdin is None:
        return None
    try:
        if stdin.isatty():
            return None
        data: bytes = getattr(stdin, "buffer", stdin).read()
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read stdin: {exc}") from None
    if not data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"stdin is not valid UTF-8 (byte {exc.start})") from None


def read_piped(stdin: Any, option: str, what: str) -> str | None:
    """stdin for an option given `-` (`-d -`, `--messages -`): it must be piped."""
    if stdin is None or stdin.isatty():
        raise UsageError(f"{option} -: stdin is a terminal or closed; pipe the {what} in")
    return read_stdin(stdin)


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
    if data == "-" or data is None:
        piped = read_piped(stdin, "-d", "body") if data == "-" else read_stdin(stdin)
        if data == "-" and piped is None:
            raise UsageError("-d -: stdin is empty")
        body = piped.encode("utf-8") if piped is not None else None
    elif data.startswith("@"):
        body = read_bytes(data[1:], "--data")
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

"""Where the prompt comes from: piped stdin first, the argument words last."""

from __future__ import annotations

from typing import Any

from ostream.errors import UsageError


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

"""Where the prompt comes from: piped stdin first, the argument words last."""

from __future__ import annotations


def assemble(piped: str | None, words: list[str]) -> str | None:
    """The prompt: `piped` and the words joined by one blank line; None if neither."""
    # An empty word list or only empty words (an unset "$PROMPT") is no prompt.
    spoken = " ".join(words) if any(words) else None
    if piped is not None and spoken is not None:
        return piped.rstrip("\n") + "\n\n" + spoken
    return piped if piped is not None else spoken

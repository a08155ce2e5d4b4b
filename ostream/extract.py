"""`-x` / `--extract-last`: only the contents of a fenced code block of the answer.

The fences are CommonMark's: a line of at least three backticks or tildes,
indented by up to three spaces, with an optional info string (a backtick fence's
info string holds no backtick); the block ends at a line of the same character,
at least as long, followed only by blanks, or at the end of the answer. Up to
the opening fence's indentation is removed from each content line.

FenceScanner is a streaming filter: text goes in in pieces of any size, and the
first block's contents come out as they arrive; only a line that may yet turn
out to be the closing fence is held back until it is decided.
"""

from __future__ import annotations

import re
from typing import Any

from ostream.errors import OstreamError
from ostream.output import Streams, Writer

_OPENING = re.compile(r"( {0,3})(`{3,}|~{3,})([^\n]*)\n?")


class NoCodeBlock(OstreamError):
    """The answer completed without a fenced code block (exit 1)."""

    kind = "no_code_block"


class FenceScanner:
    """Feed it the answer's text; `feed` returns what to write now (the first block's
    contents as they arrive; nothing when `last`), `end` what is left at the end."""

    def __init__(self, *, last: bool = False) -> None:
        self.last = last
        self.found = False
        self._line = ""  # a line not decided yet: outside a block, or a possible closing fence
        self._fence: tuple[str, int, int] | None = None  # (character, length, indentation)
        self._mid_line = False  # inside, the current line is content: pass it straight on
        self._done = False  # the first block closed (first mode): ignore the rest
        self._block: list[str] = []
        self._closed: str | None = None  # the last closed block's contents (last mode)

    def feed(self, text: str) -> str:
        out: list[str] = []
        while text and not self._done:
            newline = text.find("\n")
            piece, text = (text, "") if newline < 0 else (text[: newline + 1], text[newline + 1 :])
            if self._fence is None:
                self._line += piece
                if newline >= 0:
                    self._open(self._line)
                    self._line = ""
            elif self._mid_line:
                self._emit(piece, out)
                self._mid_line = newline < 0
            else:
                self._content(self._line + piece, newline >= 0, out)
        return "".join(out)

    def end(self) -> str:
        """What is still to be written once the answer has ended."""
        out: list[str] = []
        if self._done:
            return ""
        if self._fence is None:
            if self._line:
                self._open(self._line)  # a fence on the answer's last line opens an empty block
        elif self._line and not self._closing(self._line):
            self._emit(self._dedent(self._line), out)
        if self._fence is not None:  # unclosed: the block runs to the end of the answer
            self._close()
        if self.last:
            return self._closed or ""
        return "".join(out)

    def _open(self, line: str) -> None:
        match = _OPENING.fullmatch(line.rstrip("\r\n") + "\n")
        if match is None or (match.group(2)[0] == "`" and "`" in match.group(3)):
            return
        self._fence = (match.group(2)[0], len(match.group(2)), len(match.group(1)))
        self.found = True
        self._block = []

    def _content(self, line: str, whole: bool, out: list[str]) -> None:
        """A line inside a block, from its start: the closing fence, or content."""
        closing = self._closing(line)
        if whole:
            self._line = ""
            if closing:
                self._close()
            else:
                self._emit(self._dedent(line), out)
        elif closing or re.fullmatch(rf" {{0,3}}{re.escape(self._char)}*", line):
            self._line = line  # it may still become the closing fence
        else:
            self._line = ""
            self._emit(self._dedent(line), out)
            self._mid_line = True

    @property
    def _char(self) -> str:
        return self._fence[0] if self._fence else "`"

    def _closing(self, line: str) -> bool:
        """Whether `line` (from its start) closes the open block."""
        length = self._fence[1] if self._fence else 3
        pattern = rf" {{0,3}}{re.escape(self._char)}{{{length},}}[ \t\r]*\n?"
        return re.fullmatch(pattern, line) is not None

    def _dedent(self, line: str) -> str:
        indent = self._fence[2] if self._fence else 0
        spaces = len(line) - len(line.lstrip(" "))
        return line[min(indent, spaces) :]

    def _emit(self, text: str, out: list[str]) -> None:
        if self.last:
            self._block.append(text)
        else:
            out.append(text)

    def _close(self) -> None:
        self._fence = None
        self._mid_line = False
        if self.last:
            self._closed = "".join(self._block)
        else:
            self._done = True


class ExtractingWriter(Writer):
    """A Writer whose answer text goes through a FenceScanner; `conclude` once the
    answer completed writes what is left, or raises NoCodeBlock."""

    def __init__(self, streams: Streams, *, last: bool) -> None:
        super().__init__(streams)
        self.scanner = FenceScanner(last=last)
        self.option = "--extract-last" if last else "-x"

    def text(self, text: str, **how: Any) -> None:  # `how`: Writer.text's own keywords
        super().text(self.scanner.feed(text), **how)

    def conclude(self) -> None:
        super().text(self.scanner.end())
        super().finish()
        if not self.scanner.found:
            raise NoCodeBlock(f"{self.option}: the answer holds no fenced code block")

"""Writers: answer text and JSON lines to stdout, thinking and statistics to stderr.

Everything is written as UTF-8 bytes to the binary streams and flushed at once,
whatever the locale. On a terminal, control characters from the model are shown
visibly instead of being interpreted.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO

from ostream.errors import OutputError
from ostream.fds import silence
from ostream.terminal import visible

DIM, RESET = "\x1b[2m", "\x1b[0m"


@dataclass
class Streams:
    """The process's I/O as a command sees it; tests substitute their own."""

    stdout: BinaryIO
    stderr: BinaryIO
    stdout_tty: bool
    stderr_tty: bool
    color: bool
    stdout_never_blocks: bool = False  # a regular file or a terminal, not a pipe or socket

    @classmethod
    def from_sys(cls) -> Streams:
        stdout_tty = _isatty(sys.stdout)
        stderr_tty = _isatty(sys.stderr)
        return cls(
            stdout=_binary(sys.stdout),
            # Started with fd 2 closed: what would go there is lost, not an error.
            stderr=_binary(sys.stderr) if sys.stderr is not None else open(os.devnull, "wb"),
            stdout_tty=stdout_tty,
            stderr_tty=stderr_tty,
            color=stderr_tty and "NO_COLOR" not in os.environ,
            stdout_never_blocks=stdout_tty or _is_regular_file(sys.stdout),
        )


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _is_regular_file(stream: Any) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (AttributeError, ValueError, OSError):
        return False


def _binary(stream: Any) -> BinaryIO:
    buffer = getattr(stream, "buffer", None)
    return buffer if buffer is not None else stream  # type: ignore[no-any-return]


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, from a \ud83d escape: U+FFFD, like a decoder
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text).encode("utf-8")


class Writer:
    """Owns stdout and stderr for one run: encoding, flushing, terminal safety."""

    def __init__(self, streams: Streams) -> None:
        self.streams = streams
        self._out = streams.stdout
        self._err = streams.stderr
        self._out_safe = streams.stdout_tty
        self._err_safe = streams.stderr_tty
        self._out_at_line_start = True
        self._err_at_line_start = True
        # Once the buffer has been flushed, stdout is written unbuffered: one system
        # call a write instead of a copy into the buffer and a flush (a third of the
        # cost per chunk). Only for a real file descriptor; a test's BytesIO keeps
        # the buffered path.
        raw = getattr(self._out, "raw", None)
        self._raw: io.FileIO | None = raw if isinstance(raw, io.FileIO) else None
        self._direct = False

    def text(self, text: str) -> None:
        """Answer text, as it came, to stdout."""
        if not text:
            return
        if not self._err_at_line_start:
            self.end_thinking()
        if self._out_safe:
            text = visible(text)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            data = _utf8(text)
        self._write_out(data)

    def line(self, data: bytes) -> None:
        """One whole line to stdout; `data` ends with b"\\n" or gets one."""
        if self._out_safe:
            data = visible(data.decode("utf-8", "replace")).encode("utf-8")
        if not self._out_at_line_start:
            data = b"\n" + data
        if not data.endswith(b"\n"):
            data += b"\n"
        self._write_out(data)

    def raw(self, data: bytes) -> None:
        """Bytes to stdout unchanged."""
        if data:
            self._write_out(data)

    def thinking(self, text: str) -> None:
        if not text:
            return
        if self._err_safe:
            text = visible(text)
        ends_line = text.endswith("\n")
        if self.streams.color:
            text = DIM + text + RESET
        self._write_err(_utf8(text), ends_line)

    def end_thinking(self) -> None:
        if not self._err_at_line_start:
            self._write_err(b"\n", True)

    def info(self, text: str) -> None:
        """A finished message for the human on stderr."""
        self.end_thinking()
        self._write_err(text.encode("utf-8", "replace"), text.endswith("\n"))

    def end_line_for_message(self) -> None:
        """Before a message on a terminal that also shows stdout (raw, --jsonl): start it on
        a line of its own, without adding to stdout."""
        if self._out_safe and self._err_safe and not self._out_at_line_start:
            self._write_err(b"\n", True)

    def finish(self) -> None:
        """End stdout with a newline if the answer did not."""
        self.end_thinking()
        if not self._out_at_line_start:
            self._write_out(b"\n")

    def _write_out(self, data: bytes) -> None:
        try:
            if self._direct:
                assert self._raw is not None
                written = self._raw.write(data)
                if written != len(data):  # cut short by a signal, or a non-blocking fd
                    self._out.write(data[written or 0 :])
                    self._out.flush()
            else:
                self._out.write(data)
                self._out.flush()
                self._direct = self._raw is not None
        except BrokenPipeError:
            raise
        except OSError as exc:
            silence(1)  # what is left in the buffer must not fail again at exit
            raise OutputError.of(exc) from None
        self._out_at_line_start = data.endswith(b"\n")

    def _write_err(self, data: bytes, ends_line: bool) -> None:
        try:
            self._err.write(data)
            self._err.flush()
        except OSError:
            # stderr's reader has gone (2> >(head)): the answer and the exit status matter more.
            silence(2)
        self._err_at_line_start = ends_line


def format_stats(done: dict[str, Any]) -> str:
    """`--verbose` statistics in the spirit of `ollama run --verbose`."""
    rows: list[tuple[str, str]] = []

    def duration(key: str, label: str) -> None:
        value = done.get(key)
        if isinstance(value, (int, float)):
            rows.append((label, _seconds(value)))

    def count_and_rate(count_key: str, duration_key: str, label: str) -> None:
        count, nanos = done.get(count_key), done.get(duration_key)
        if isinstance(count, int):
            rows.append((f"{label} count", f"{count} token(s)"))
        if isinstance(nanos, (int, float)):
            rows.append((f"{label} duration", _seconds(nanos)))
            if isinstance(count, int) and nanos > 0:
                rows.append((f"{label} rate", f"{count / nanos * 1e9:.2f} tokens/s"))

    duration("total_duration", "total duration")
    duration("load_duration", "load duration")
    count_and_rate("prompt_eval_count", "prompt_eval_duration", "prompt eval")
    count_and_rate("eval_count", "eval_duration", "eval")
    if isinstance(done.get("done_reason"), str):
        rows.append(("done reason", done["done_reason"]))
    return "".join(f"{label + ':':<22}{value}\n" for label, value in rows)


def _seconds(nanos: float) -> str:
    seconds = nanos / 1e9
    if seconds >= 1:
        return f"{seconds:.3f}s"
    return f"{seconds * 1e3:.3f}ms"

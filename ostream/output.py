"""Writers: answer text and JSON lines to stdout, thinking and statistics to stderr.

Everything is written as UTF-8 bytes to the binary streams and flushed at once,
whatever the locale. On a terminal, control characters from the model are shown
visibly instead of being interpreted.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, BinaryIO

from ostream.errors import STDOUT_CLOSED, OutputError
from ostream.fds import silence
from ostream.terminal import visible, visible_bytes

DIM, RESET = "\x1b[2m", "\x1b[0m"


@dataclass
class Streams:
    """Where a command's output goes, as the Writer sees it (environment.Environment
    adds stdin and the environment variables); tests substitute their own."""

    stdout: BinaryIO | None  # None: the process started with fd 1 closed
    stderr: BinaryIO
    stdout_tty: bool = False
    stderr_tty: bool = False
    color: bool = False
    stdout_never_blocks: bool = False  # a regular file or a terminal, not a pipe or socket
    process_fds: bool = False  # stdout and stderr are the process's fds 1 and 2

    def silence_stdout(self) -> None:
        """Point fd 1 at /dev/null: what is left to write, and the exit-time flush,
        can neither fail again (EPIPE) nor block. A test's streams are left alone."""
        if self.process_fds:
            silence(1)

    def silence_stderr(self) -> None:
        """The same for fd 2, whose reader has gone: the exit status still tells."""
        if self.process_fds:
            silence(2)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, from a \ud83d escape: U+FFFD, like a decoder
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text).encode("utf-8")


class Writer:
    """Owns stdout and stderr for one run: encoding, flushing, terminal safety."""

    def __init__(self, streams: Streams) -> None:
        if streams.stdout is None:  # refused before the model starts answering into nothing
            raise OutputError(STDOUT_CLOSED)
        self.streams = streams
        self._out = streams.stdout
        self._err = streams.stderr
        self._out_safe = streams.stdout_tty
        self._err_safe = streams.stderr_tty
        self._out_at_line_start = True
        self._err_at_line_start = True
        # Once the buffer has been flushed, stdout is written unbuffered: one system
        # call a write instead of a copy into the buffer and a flush (a third of the
        # cost per chunk). Only for the process's own fd 1: a test's streams (a
        # BytesIO, or a file the process does not own as its stdout) keep the
        # buffered path.
        raw = getattr(self._out, "raw", None)
        direct = streams.process_fds and isinstance(raw, io.FileIO)
        self._raw: io.FileIO | None = raw if direct else None
        self._direct = False

    def text(self, text: str, *, last: bool = False) -> None:
        """Answer text, as it came, to stdout; the `last` text of an answer carries the
        final newline (if it does not end in one) in the same write."""
        if not text:
            return
        if not self._err_at_line_start:
            self.end_thinking()
        if self._out_safe:
            text = visible(text)
        if last and not text.endswith("\n"):
            text += "\n"
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

    def lines(self, block: bytes) -> None:
        """Whole lines without the last one's b"\\n", which is added: --jsonl's pass-through."""
        if self._out_safe or not self._out_at_line_start:
            self.line(block)
        else:
            self._write_out(block + b"\n")

    def body(self, data: bytes) -> None:
        """A server's bytes (raw's response) to stdout: unchanged, except on a terminal,
        where their control characters are shown visibly (see terminal.visible_bytes)."""
        if data:
            self._write_out(visible_bytes(data) if self._out_safe else data)

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
            raise OutputError.of(exc) from None  # the failure map silences stdout
        self._out_at_line_start = data.endswith(b"\n")

    def _write_err(self, data: bytes, ends_line: bool) -> None:
        try:
            self._err.write(data)
            self._err.flush()
        except OSError:
            # stderr's reader has gone (2> >(head)): the answer and the exit status matter more.
            self.streams.silence_stderr()
        self._err_at_line_start = ends_line


def write_error(streams: Streams, message: str) -> None:
    """`ostream: error: message` as one line on stderr."""
    # The message may quote the server: never let it drive the terminal.
    one_line = visible(" ".join(message.split()))
    prefix = "\x1b[1;31mostream: error:\x1b[0m" if streams.color else "ostream: error:"
    write_stderr(streams, f"{prefix} {one_line}\n")


def write_stderr(streams: Streams, text: str) -> None:
    """Text for the human on stderr, outside a run's Writer (errors, help)."""
    try:
        streams.stderr.write(text.encode("utf-8", "replace"))
        streams.stderr.flush()
    except OSError:
        streams.silence_stderr()
    except ValueError:  # closed
        pass


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

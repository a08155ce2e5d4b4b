"""The I/O environment a command runs in: its streams, their TTY flags, colour and the
environment variables. Looked up when a command runs; a test hands in its own."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ostream.output import Streams


@dataclass
class Environment(Streams):
    """Streams (what the Writer needs) plus stdin and the environment variables.

    `stdout` is None when the process started with fd 1 closed: a command refuses
    to run (exit 2) rather than have the model answer into nothing.
    """

    stdin: Any = None  # None: closed; read as bytes through its .buffer when it has one
    stdin_tty: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_process(cls) -> Environment:
        stdout_tty = _isatty(sys.stdout)
        stderr_tty = _isatty(sys.stderr)
        return cls(
            stdout=_binary(sys.stdout) if sys.stdout is not None else None,
            # Started with fd 2 closed: what would go there is lost, not an error.
            stderr=_binary(sys.stderr) if sys.stderr is not None else open(os.devnull, "wb"),
            stdout_tty=stdout_tty,
            stderr_tty=stderr_tty,
            color=_colour(stderr_tty, os.environ),
            stdout_never_blocks=stdout_tty or _is_regular_file(sys.stdout),
            process_fds=True,
            stdin=sys.stdin,
            stdin_tty=_isatty(sys.stdin),
            environ=os.environ,
        )

    @property
    def piped_stdin(self) -> Any:
        """stdin when something is piped in; None when it is a terminal or closed."""
        return None if self.stdin_tty else self.stdin

    @property
    def debug(self) -> bool:
        """OSTREAM_DEBUG=1: expected failures show their traceback too (for developers)."""
        return self.environ.get("OSTREAM_DEBUG", "") not in ("", "0")


def _colour(stderr_tty: bool, environ: Mapping[str, str]) -> bool:
    """Colour on stderr: a terminal that can show it, and no NO_COLOR (any value)."""
    return stderr_tty and "NO_COLOR" not in environ and environ.get("TERM") != "dumb"


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

"""Exit codes, the error classes, and the one place that turns a failure into a message."""

from __future__ import annotations

import enum
import os
import sys
from typing import Any, BinaryIO

from ostream.fds import silence
from ostream.terminal import visible


class ExitCode(enum.IntEnum):
    OK = 0
    SERVER_ERROR = 1
    USAGE = 2
    CONNECT = 3
    MODEL_NOT_FOUND = 4
    PROTOCOL = 5
    TIMEOUT = 124
    INTERRUPTED = 130
    BROKEN_PIPE = 141
    TERMINATED = 143


class OstreamError(Exception):
    """An expected failure: one line on stderr and an exit code, never a traceback."""

    code: ExitCode = ExitCode.SERVER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OutputError(OstreamError):
    """stdout cannot be written (a full disk, an I/O error); a closed pipe is not this."""

    code = ExitCode.SERVER_ERROR

    @classmethod
    def of(cls, exc: OSError) -> OutputError:
        return cls(f"cannot write to stdout: {exc.strerror or exc}")


class UsageError(OstreamError):
    code = ExitCode.USAGE


class ServerError(OstreamError):
    code = ExitCode.SERVER_ERROR


class ConnectError(OstreamError):
    code = ExitCode.CONNECT

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry  # False when trying again cannot help (TLS, a bad URL) or already waited


class ModelNotFound(OstreamError):
    code = ExitCode.MODEL_NOT_FOUND


class ProtocolError(OstreamError):
    code = ExitCode.PROTOCOL


class Timeout(OstreamError):
    code = ExitCode.TIMEOUT


class Stop(BaseException):
    """Ends the run without a message: a signal or a closed stdout.

    A BaseException, so no `except Exception` on the way up can swallow it.
    """

    def __init__(self, code: ExitCode) -> None:
        super().__init__(code)
        self.code = code


def debug() -> bool:
    return os.environ.get("OSTREAM_DEBUG", "") not in ("", "0")


def report(message: str, stderr: BinaryIO | None = None, *, color: bool = False) -> None:
    """Write `ostream: error: message` as one line on stderr."""
    stream: Any = stderr
    if stream is None:
        if sys.stderr is None:  # started with fd 2 closed: nowhere to say it
            return
        sys.stderr.flush()
        stream = getattr(sys.stderr, "buffer", sys.stderr)
    # The message may quote the server: never let it drive the terminal.
    one_line = visible(" ".join(message.split()))
    prefix = "\x1b[1;31mostream: error:\x1b[0m" if color else "ostream: error:"
    try:
        stream.write(f"{prefix} {one_line}\n".encode("utf-8", "replace"))
        stream.flush()
    except OSError:
        silence(2)  # its reader has gone; the exit status still tells
    except ValueError:
        pass

"""Exit codes, the error classes, and the one function that turns any failure into
what the user is told: `classify`.

Every way a run can end goes through `classify`: a command (guard.execute), the
command line around it (cli's Click adapter), `--version`, and the per-job and
per-turn errors of commands that go on after a failure (a batch job's result
line, an interactive chat turn) read the same `Failure`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class ExitCode(enum.IntEnum):
    """The exit statuses; `meaning` is the one wording of the table that --help, the
    man page and the README show (tests/test_docs.py holds them to it)."""

    OK = 0, "ok", 'the stream completed ("done": true) or the raw request succeeded'
    SERVER_ERROR = (
        1,
        "server_error",
        "the server reported an error: HTTP status 400 or more (except a missing model),"
        ' or an {"error": ...} line mid-stream; also: a redirect, stdout or --output could'
        " not be written (closed, a full disk, an I/O error), a --history turn could not"
        " be saved, or -x found no code block in the answer",
    )
    USAGE = (
        2,
        "invalid_request",
        "usage error: bad option, no model, no prompt, invalid JSON, unreadable file"
        " or stdin, unparsable host",
    )
    CONNECT = (
        3,
        "connection_failed",
        "cannot connect to the server (refused, unknown host, network unreachable, TLS failure)",
    )
    MODEL_NOT_FOUND = 4, "model_not_found", "model not found (HTTP 404 naming the model)"
    PROTOCOL = (
        5,
        "protocol_error",
        'protocol error: the stream ended before "done": true, a line was not JSON,'
        " or the connection broke mid-stream",
    )
    TIMEOUT = 124, "timeout", "timed out (--timeout)"
    INTERRUPTED = 130, "interrupted", "interrupted by SIGINT (Ctrl-C)"
    BROKEN_PIPE = (
        141,
        "broken_pipe",
        "stdout closed by the reader (broken pipe, e.g. | head): silent, no message",
    )
    TERMINATED = 143, "terminated", "terminated by SIGTERM"

    kind: str  # the short machine name, as a batch result's "error": {"code": ...} says it
    meaning: str

    def __new__(cls, value: int, kind: str, meaning: str) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.kind = kind
        member.meaning = meaning
        return member


class OstreamError(Exception):
    """An expected failure: one line on stderr and an exit code, never a traceback."""

    code: ExitCode = ExitCode.SERVER_ERROR
    kind: str | None = None  # a finer machine name than the exit code's own, if any

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OutputError(OstreamError):
    """Output cannot be written (a full disk, an I/O error); a closed pipe is not this."""

    code = ExitCode.SERVER_ERROR
    kind = "output_error"

    @classmethod
    def of(cls, exc: OSError) -> OutputError:
        """`exc` from writing stdout, or the file it names."""
        if exc.filename:
            return cls(f"{exc.filename}: {exc.strerror or exc}")
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


# What an entry point catches and hands to `classify`; SystemExit and GeneratorExit pass.
FAILURES = (Exception, KeyboardInterrupt, Stop)

STDOUT_CLOSED = "cannot write to stdout: it is closed"

# Endings after which stdout may be a pipe nobody reads or that blocks: the exit-time
# flush must neither complain (EPIPE) nor wait.
_QUIET_ENDINGS = (ExitCode.INTERRUPTED, ExitCode.BROKEN_PIPE, ExitCode.TERMINATED)


@dataclass(frozen=True)
class Failure:
    """What a failure means for the user: the exit code, the one-line message (None:
    silent), whether stdout is to be silenced, and a short machine name (`kind`)."""

    code: ExitCode
    message: str | None
    silence_stdout: bool = False
    kind: str = ""

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", self.code.kind)

    @property
    def ends_run(self) -> bool:
        """Whether a command that goes on after a failure (a chat -i turn) must end on
        this one: a signal, a closed or unwritable stdout."""
        return self.silence_stdout or self.message is None


def classify(exc: BaseException) -> Failure:
    """The one failure map: any exception → exit code, message, stdout silenced or not."""
    if isinstance(exc, Failed):
        return exc.failure
    if isinstance(exc, OstreamError):
        return Failure(
            exc.code,
            exc.message,
            silence_stdout=isinstance(exc, OutputError),  # what is left must not fail again
            kind=exc.kind or "",
        )
    if isinstance(exc, KeyboardInterrupt):
        return Failure(ExitCode.INTERRUPTED, None, silence_stdout=True)
    if isinstance(exc, Stop):
        return Failure(exc.code, None, silence_stdout=exc.code in _QUIET_ENDINGS)
    if isinstance(exc, BrokenPipeError):
        return Failure(ExitCode.BROKEN_PIPE, None, silence_stdout=True)
    return Failure(
        ExitCode.SERVER_ERROR,
        f"unexpected {type(exc).__name__}: {exc} (OSTREAM_DEBUG=1 shows a traceback)",
        kind="internal_error",
    )


class Failed(OstreamError):
    """A Failure already decided (a host's, or `combine`'s), raised to end the command
    with exactly that: `classify` gives it back unchanged."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message or failure.kind)
        self.failure = failure
        self.code = failure.code
        self.kind = failure.kind


def combine(
    failures: Sequence[Failure], hosts: int, *, every_host_must_succeed: bool = False
) -> Failure:
    """The one Failure a command across `hosts` servers ends with, `failures` (at least
    one) being those of the hosts that failed.

    One host: its own Failure, as generate would report it. Several: a listing
    (models, ps, batch's first look) ends 3 when no host answered, else 1; with
    `every_host_must_succeed` (pull) it ends 3 when a host could not be reached, else 1.
    """
    if not failures:
        raise ValueError("combine: no failure to combine")
    if hosts == 1:
        return failures[0]
    if every_host_must_succeed:
        unreachable = sum(f.code == ExitCode.CONNECT for f in failures)
        if unreachable:
            return Failure(ExitCode.CONNECT, f"{unreachable} of {hosts} hosts could not be reached")
        return Failure(
            ExitCode.SERVER_ERROR, f"the pull failed on {len(failures)} of {hosts} hosts"
        )
    if len(failures) >= hosts:
        return Failure(ExitCode.CONNECT, "no host answered")
    return Failure(ExitCode.SERVER_ERROR, f"{len(failures)} of {hosts} hosts did not answer")

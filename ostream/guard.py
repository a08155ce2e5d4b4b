"""Run one command's action; turn every failure into one message and an exit code."""

from __future__ import annotations

from collections.abc import Callable

from ostream.errors import ExitCode, OstreamError, Stop, debug, report
from ostream.fds import silence
from ostream.output import Streams, Writer
from ostream.signals import cancellable


def execute(action: Callable[[Writer], None], streams: Streams) -> ExitCode:
    """Run `action`; expected failures become one `ostream: error:` line, signals and
    a closed stdout their exit codes, silently. OSTREAM_DEBUG=1 re-raises."""
    writer = Writer(streams)
    try:
        with cancellable():
            action(writer)
    except OstreamError as exc:
        if debug():
            raise
        writer.end_line_for_message()
        report(exc.message, streams.stderr, color=streams.color)
        return exc.code
    except KeyboardInterrupt:
        silence_stdout()  # a blocked stdout must not hold up the exit
        return ExitCode.INTERRUPTED
    except Stop as stop:
        silence_stdout()
        return stop.code
    except BrokenPipeError:
        silence_stdout()
        return ExitCode.BROKEN_PIPE
    except Exception as exc:
        if debug():
            raise
        report(
            f"unexpected {type(exc).__name__}: {exc} (OSTREAM_DEBUG=1 shows a traceback)",
            streams.stderr,
            color=streams.color,
        )
        return ExitCode.SERVER_ERROR
    return ExitCode.OK


def silence_stdout() -> None:
    """Point fd 1 at /dev/null so the exit-time flush can neither complain (EPIPE) nor block."""
    silence(1)

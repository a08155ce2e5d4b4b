"""Run one command's action; end every failure the way the failure map says."""

from __future__ import annotations

from collections.abc import Callable

from ostream.environment import Environment
from ostream.errors import FAILURES, ExitCode, Failure, classify
from ostream.output import Writer, write_error
from ostream.signals import cancellable

Action = Callable[[Environment, Writer], None]


def execute(action: Action, env: Environment) -> ExitCode:
    """Run `action`; a failure ends as the failure map says (see `conclude`)."""
    writer: Writer | None = None
    try:
        writer = Writer(env)
        with cancellable():
            action(env, writer)
    except FAILURES as exc:
        return conclude(exc, env, writer)
    return ExitCode.OK


def conclude(exc: BaseException, env: Environment, writer: Writer | None = None) -> ExitCode:
    """End the run on `exc` as errors.classify says: silence stdout, say the message
    (on a line of its own), return the exit code. OSTREAM_DEBUG=1 re-raises any
    failure that has a message, for its traceback."""
    failure = classify(exc)
    if failure.message is not None and env.debug:
        raise exc
    if failure.silence_stdout:
        env.silence_stdout()
    if failure.message is not None:
        if writer is not None:
            writer.end_line_for_message()
        write_error(env, failure.message)
    return failure.code


def report(
    exc: BaseException, env: Environment, wording: Callable[[Failure], str] | None = None
) -> Failure:
    """For a command that goes on after a failure (a chat -i turn, a slash command): say
    `exc` in one line (as `wording` puts it, else its own message) and return what it
    means. Re-raises what ends the run (Failure.ends_run), and under OSTREAM_DEBUG=1
    every failure, for its traceback."""
    failure = classify(exc)
    if failure.ends_run or env.debug:
        raise exc
    write_error(env, wording(failure) if wording is not None else f"{failure.message}")
    return failure

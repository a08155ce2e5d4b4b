"""The Click adapter: the Typer group that runs the command line, and the one place
that knows how Click (vendored by Typer) ends one. Every such ending goes through
the failure map (errors.classify, guard.conclude)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from ostream.environment import Environment
from ostream.errors import (
    FAILURES,
    STDOUT_CLOSED,
    ExitCode,
    OstreamError,
    OutputError,
    Stop,
    UsageError,
)
from ostream.guard import conclude
from ostream.output import write_stderr


class _NoCommand(Exception):
    """`ostream` alone: the help goes to stderr, exit 2 (Click's NoArgsIsHelpError, made
    ours so the adapter need not know Click's private classes)."""


class _PastClick(Exception):
    """Carries what Click would end in its own way past it: an OSError while it writes
    help (it would exit 1 on EPIPE, behind our back), a Ctrl-C while it parses (it
    would exit 130 without silencing stdout)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


class OstreamGroup(TyperGroup):
    """The whole command line: every way it ends goes through the failure map."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        env = extra.pop("obj", None) or Environment.from_process()
        try:
            if (
                env.stdout is None
            ):  # started with `>&-`: whatever it is, it would write into nothing
                raise OutputError(STDOUT_CLOSED)  # (Click would drop --help silently, exit 0)
            result = super().main(
                args, prog_name, complete_var, standalone_mode=False, obj=env, **extra
            )
            code = result if isinstance(result, int) else 0
        except FAILURES as exc:
            code = conclude(in_ostream_terms(exc, env), env)
        if standalone_mode:
            sys.exit(code)
        return code

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # Click's Context
        if not args and not ctx.resilient_parsing:
            raise _NoCommand(ctx.get_help())
        return super().parse_args(ctx, args)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except (OSError, KeyboardInterrupt) as exc:  # writing --help, parsing
            raise _PastClick(exc) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (OSError, KeyboardInterrupt) as exc:  # a command's --help; commands end their own
            raise _PastClick(exc) from None


def in_ostream_terms(exc: BaseException, env: Environment) -> BaseException:
    """The Click adapter: how Click (vendored by Typer) ends a command line, as the
    exceptions the failure map knows. Everything else passes through unchanged.

    - a usage error (typer.TyperException is Click's ClickException): one line with a
      pointer to --help, exit 2; another Click error: its message, exit 1;
    - no command at all: the help on stderr, exit 2, silently otherwise;
    - an OSError writing help or completion output: a broken pipe or an output error;
    - a Ctrl-C while the command line is parsed: as anywhere else.

    Click's own endings (exit 1 on EPIPE, 130, NoArgsIsHelpError) are headed off by OstreamGroup,
    so nothing here matches Click's private classes by name.
    """
    if isinstance(exc, _NoCommand):
        write_stderr(env, f"{exc}\n")
        return Stop(ExitCode.USAGE)
    if isinstance(exc, _PastClick):
        exc = exc.error
    if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
        return OutputError.of(exc)  # help, or shell completion's answer
    if isinstance(exc, typer.TyperException):
        if exc.exit_code == ExitCode.USAGE:
            return UsageError(exc.format_message() + _usage_hint(exc))
        return OstreamError(exc.format_message())
    return exc


def _usage_hint(exc: typer.TyperException) -> str:
    """What to add to Click's message for a usage error."""
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return ""
    unknown = getattr(exc, "option_name", None)  # Click's NoSuchOption
    if (
        isinstance(unknown, str)
        and not unknown.startswith("--")
        and any(getattr(param, "nargs", 1) == -1 for param in ctx.command.params)
    ):
        # `what is -1 plus 2`, `explain rm -rf`: a word of the prompt taken for an option.
        return " (if it is part of the prompt, quote the whole prompt or put -- before its words)"
    return f" (see '{ctx.command_path} --help')"

"""The command line: parse, check, build the request body, hand over to ostream.run."""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ostream import __version__
from ostream.errors import ExitCode, OutputError, Stop, UsageError, report
from ostream.guard import execute, silence_stdout
from ostream.output import Streams, Writer
from ostream.params import (
    Format,
    HideThinking,
    Host,
    Images,
    Jsonl,
    KeepAlive,
    MessageWords,
    Model,
    Opts,
    PromptWords,
    Retries,
    System,
    Think,
    TimeoutOpt,
    Verbose,
)

EXIT_CODES = """\b
Exit status:
  0    the stream completed (done: true) or the raw request succeeded
  1    the server reported an error: HTTP status >= 400 (except a missing
       model), or an {"error": ...} line mid-stream; or stdout not writable
  2    usage error: bad option, no model, no prompt, invalid JSON, unreadable
       file or stdin, unparsable host
  3    cannot connect to the server (refused, unknown host, TLS failure)
  4    model not found (HTTP 404 naming the model)
  5    protocol error: the stream ended before done: true, a line was not
       JSON, or the connection broke
  124  timed out (--timeout)
  130  interrupted by SIGINT (Ctrl-C)
  141  stdout closed by the reader (broken pipe)
  143  terminated by SIGTERM"""


class _Group(TyperGroup):
    """Usage errors as one line, `ostream: error: ...`, with exit status 2."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except SystemExit as exc:
            # Typer ends an EPIPE while printing help with exit 1, having wrapped stdout
            # to hush the exit-time flush; a closed stdout is 141 here, silently.
            if type(sys.stdout).__name__ != "PacifyFlushWrapper":
                raise
            silence_stdout()
            code = (
                ExitCode.BROKEN_PIPE
                if exc.code == 1
                else (exc.code if isinstance(exc.code, int) else 1)
            )
        except OSError as exc:  # --help into a full disk, completion files
            silence_stdout()
            report(_os_error(exc))
            code = ExitCode.SERVER_ERROR
        except Exception as exc:
            if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
                raise
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
                sys.stderr.write(ctx.get_help() + "\n")
            else:
                hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
                report(exc.format_message() + hint)
            code = ExitCode.USAGE if exc.exit_code == 2 else exc.exit_code
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=_Group,
    name="ostream",
    help="Stream answers from an Ollama server to stdout, Unix-pipe style.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        try:
            sys.stdout.write(f"ostream {__version__}\n")
            sys.stdout.flush()
        except BrokenPipeError:
            silence_stdout()
            raise typer.Exit(ExitCode.BROKEN_PIPE) from None
        except OSError as exc:  # a full disk, an I/O error
            silence_stdout()
            report(_os_error(exc))
            raise typer.Exit(ExitCode.SERVER_ERROR) from None
        except (AttributeError, ValueError):  # started with fd 1 closed
            report("stdout is closed")
            raise typer.Exit(ExitCode.USAGE) from None
        raise typer.Exit()


def _os_error(exc: OSError) -> str:
    """An OSError outside a command (help, version, completion) as a message."""
    if exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    return OutputError.of(exc).message


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Stream answers from an Ollama server to stdout, Unix-pipe style."""


def _target(host: str | None, timeout: float | None, retries: int) -> Any:
    from ostream.host import HostError, resolve
    from ostream.run import Target

    try:
        base = resolve(host, os.environ)
    except HostError as exc:
        raise UsageError(str(exc)) from None
    if timeout is not None and not math.isfinite(timeout):
        raise UsageError("--timeout takes a finite number of seconds")
    # Trimmed like Ollama trims its variables: spaces, then quotes.
    key = os.environ.get("OLLAMA_API_KEY", "").strip().strip("\"'")
    if re.search(r"[^\x21-\x7e]", key):  # checked here: http.client's message would quote it
        raise UsageError("OLLAMA_API_KEY holds a space, a control or a non-ASCII character")
    return Target(base, key or None, timeout, retries)


def _common_body(
    model: str | None,
    options: list[str] | None,
    fmt: str | None,
    think: str | None,
    keep_alive: str | None,
) -> dict[str, Any]:
    from ostream import options as parse

    name = model or os.environ.get("OSTREAM_MODEL")
    if not name:
        raise UsageError("no model: pass -m NAME or set OSTREAM_MODEL")
    body: dict[str, Any] = {"model": name, "stream": True}
    if options:
        body["options"] = parse.parse_options(options)
    if fmt is not None:
        body["format"] = parse.parse_format(fmt)
    if think is not None:
        body["think"] = parse.parse_think(think)
    if keep_alive is not None:
        body["keep_alive"] = parse.parse_keep_alive(keep_alive)
    return body


def _prompt(words: list[str] | None, *, use_stdin: bool = True) -> str | None:
    from ostream.prompt import assemble, read_stdin

    piped = read_stdin(sys.stdin) if use_stdin else None
    return assemble(piped, words or [])


def _execute(action: Callable[[Writer], None]) -> None:
    """Run `action` with the real streams; turn every failure into a message and a code."""
    if sys.stdout is None:  # started with fd 1 closed: refuse before the model starts
        report("stdout is closed")
        raise typer.Exit(ExitCode.USAGE)
    streams = Streams.from_sys()
    code = execute(action, streams)
    if code:
        raise typer.Exit(int(code))


@app.command()
def generate(
    prompt: PromptWords = None,
    model: Model = None,
    system: System = None,
    option: Opts = None,
    format: Format = None,
    think: Think = None,
    hide_thinking: HideThinking = False,
    keep_alive: KeepAlive = None,
    image: Images = None,
    jsonl: Jsonl = False,
    verbose: Verbose = False,
    host: Host = None,
    timeout: TimeoutOpt = None,
    retries: Retries = 2,
) -> None:
    """Stream the answer to a prompt (POST /api/generate).

    The prompt is the PROMPT words; text piped on stdin comes first, then a
    blank line, then the words.
    """

    def action(writer: Writer) -> None:
        from ostream.options import read_images
        from ostream.run import stream_answer

        target = _target(host, timeout, retries)
        body = _common_body(model, option, format, think, keep_alive)
        text = _prompt(prompt)
        if text is None:
            raise UsageError("no prompt: give PROMPT words or pipe text on stdin")
        body["prompt"] = text
        if system is not None:
            body["system"] = system
        if image:
            body["images"] = read_images([str(p) for p in image])
        stream_answer(
            target,
            "generate",
            body,
            writer,
            jsonl=jsonl,
            show_thinking=not hide_thinking,
            verbose=verbose,
        )

    _execute(action)


@app.command()
def chat(
    message: MessageWords = None,
    model: Model = None,
    system: System = None,
    history: Annotated[
        Path | None,
        typer.Option(
            "--history",
            metavar="FILE",
            help="JSONL conversation: sent first; the new turn is appended once it completes.",
        ),
    ] = None,
    messages: Annotated[
        str | None,
        typer.Option(
            "--messages",
            metavar="FILE",
            help="A whole conversation (JSONL or JSON array; - for stdin), sent as it is.",
        ),
    ] = None,
    tools: Annotated[
        Path | None,
        typer.Option(
            "--tools", metavar="FILE", help="JSON array of tool schemas the model may call."
        ),
    ] = None,
    option: Opts = None,
    format: Format = None,
    think: Think = None,
    hide_thinking: HideThinking = False,
    keep_alive: KeepAlive = None,
    image: Images = None,
    jsonl: Jsonl = False,
    verbose: Verbose = False,
    host: Host = None,
    timeout: TimeoutOpt = None,
    retries: Retries = 2,
) -> None:
    """Stream the reply to one chat turn (POST /api/chat).

    The MESSAGE words (and piped stdin, first) form the user message.
    """

    def action(writer: Writer) -> None:
        from ostream.conversation import load_conversation, user_turn
        from ostream.history import save_turn
        from ostream.options import load_tools, read_images
        from ostream.run import stream_answer

        if history is not None and messages is not None:
            raise UsageError("--history and --messages cannot be used together")
        target = _target(host, timeout, retries)
        body = _common_body(model, option, format, think, keep_alive)
        conversation = load_conversation(messages, history, sys.stdin)
        text = _prompt(message, use_stdin=messages != "-")
        if text is None and not conversation:
            raise UsageError("nothing to send: the conversation is empty and no MESSAGE given")
        if text is None and messages is None:
            raise UsageError("no message: give MESSAGE words or pipe text on stdin")
        turn = user_turn(text, read_images([str(p) for p in image]) if image else [])
        prefix = [{"role": "system", "content": system}] if system is not None else []
        body["messages"] = prefix + conversation + turn
        if tools is not None:
            body["tools"] = load_tools(str(tools))
        reply = stream_answer(
            target,
            "chat",
            body,
            writer,
            jsonl=jsonl,
            show_thinking=not hide_thinking,
            keep=history is not None,
            verbose=verbose,
        )
        if history is not None:
            save_turn(history, [*turn, reply.message()])

    _execute(action)


@app.command()
def raw(
    path: Annotated[str, typer.Argument(metavar="[PATH]", help="API path.")] = "/api/generate",
    data: Annotated[
        str | None,
        typer.Option(
            "-d",
            "--data",
            metavar="JSON|@FILE|-",
            help="Request body: inline JSON, @file, or - for stdin (default: piped stdin).",
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            "-X",
            "--request",
            metavar="METHOD",
            help="HTTP method (default: POST with a body, GET without).",
        ),
    ] = None,
    host: Host = None,
    timeout: TimeoutOpt = None,
    retries: Retries = 2,
) -> None:
    """Send JSON to any API path, copy the answer to stdout.

    The answer goes to stdout byte for byte, line by line as it arrives.
    """

    def action(writer: Writer) -> None:
        from ostream.prompt import raw_body
        from ostream.run import raw_request

        target = _target(host, timeout, retries)
        body = raw_body(data, sys.stdin)
        verb = (method or ("POST" if body is not None else "GET")).upper()
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", verb):
            raise UsageError(f"-X: {method!r} is not an HTTP method")
        raw_request(target, verb, path, body, writer)

    _execute(action)


def main() -> None:
    try:
        app(prog_name="ostream")
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)
    except Stop as stop:
        sys.exit(stop.code)

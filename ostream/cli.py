"""The command line: parse, check, build the request body, hand over to ostream.run."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ostream import __version__, fleet_cli, request
from ostream.arguments import argument_text
from ostream.batch import command as batch_command
from ostream.click_adapter import OstreamGroup
from ostream.complete import preset_words
from ostream.environment import Environment
from ostream.errors import FAILURES, ExitCode, UsageError
from ostream.guard import Action, conclude, execute
from ostream.output import Writer
from ostream.params import (
    DryRun,
    Extract,
    ExtractLast,
    Format,
    HideThinking,
    Host,
    Images,
    Jsonl,
    KeepAlive,
    MessageWords,
    Model,
    ModelOptions,
    OutputFile,
    PresetName,
    PresetVars,
    PromptWords,
    Resume,
    Retries,
    System,
    Think,
    TimeoutSeconds,
    Verbose,
)

if TYPE_CHECKING:
    pass


def _exit_status_epilog() -> str:
    """The exit-code table of --help, from ExitCode's own wording."""
    import textwrap

    rows = [
        textwrap.fill(
            code.meaning, 72, initial_indent=f"  {int(code):<5}", subsequent_indent=" " * 7
        )
        for code in ExitCode
    ]
    return "\b\nExit status:\n" + "\n".join(rows)


app = typer.Typer(
    cls=OstreamGroup,
    name="ostream",
    help="Stream answers from an Ollama server to stdout, Unix-pipe style.",
    epilog=_exit_status_epilog(),
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(ctx: typer.Context, value: bool) -> None:
    if value:

        def action(env: Environment, writer: Writer) -> None:
            writer.line(f"ostream {__version__}".encode())

        raise typer.Exit(execute(action, _environment(ctx)))


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


def _environment(ctx: typer.Context) -> Environment:
    """The environment main() was given, else the process's own, looked up now."""
    env = ctx.find_root().obj
    return env if isinstance(env, Environment) else Environment.from_process()


def _run(ctx: typer.Context, action: Action) -> None:
    """Run a command's `action` in its environment; a failure ends with its exit code."""
    code = execute(action, _environment(ctx))
    if code:
        raise typer.Exit(int(code))


def _dry_run(writer: Writer, target: Any, path: str, body: Any, method: str = "POST") -> None:
    from ostream.client import Client
    from ostream.dryrun import show_request

    show_request(writer, method, Client(target.host.url).url(path), body)


@app.command()
def generate(
    ctx: typer.Context,
    prompt: PromptWords = None,
    preset: PresetName = None,
    var: PresetVars = None,
    model: Model = None,
    system: System = None,
    option: ModelOptions = None,
    format: Format = None,
    think: Think = None,
    hide_thinking: HideThinking = False,
    keep_alive: KeepAlive = None,
    image: Images = None,
    jsonl: Jsonl = False,
    verbose: Verbose = False,
    host: Host = None,
    timeout: TimeoutSeconds = None,
    retries: Retries = "2",
    resume: Resume = False,
    output: OutputFile = None,
    extract: Extract = False,
    extract_last: ExtractLast = False,
    dry_run: DryRun = False,
) -> None:
    """Stream the answer to a prompt (POST /api/generate).

    The prompt is the PROMPT words; text piped on stdin comes first, then a
    blank line, then the words.
    """

    def action(env: Environment, writer: Writer) -> None:
        from ostream.inputs import read_images
        from ostream.run import stream_answer

        request.check_resume(resume, jsonl)
        target = request.target(env, host, timeout, retries)
        found = request.load_preset(env, preset, var)
        body = request.common_body(env, model, option, format, think, keep_alive, found)
        images = [str(p) for p in image or []]
        use_stdin = "-" not in images  # else stdin is an image
        preset_system = None
        if found is None:
            text = request.prompt(env, prompt, use_stdin=use_stdin)
        else:
            preset_system, text = request.preset_turn(env, found, prompt, var, use_stdin)
        if text is None:
            raise UsageError("no prompt: give PROMPT words or pipe text on stdin")
        body["prompt"] = text
        if system is not None:
            body["system"] = argument_text(system, "-s")
        elif preset_system is not None:
            body["system"] = preset_system
        if images:
            body["images"] = read_images(images, env.piped_stdin, env.environ)
        from ostream.destination import answer_writer

        with answer_writer(
            writer,
            output=output,
            extract=extract,
            extract_last=extract_last,
            jsonl=jsonl,
            dry_run=dry_run,
        ) as out:
            if dry_run:
                return _dry_run(out, target, "/api/generate", body)
            stream_answer(
                target,
                "generate",
                body,
                out,
                jsonl=jsonl,
                show_thinking=not hide_thinking,
                verbose=verbose,
                resume=resume,
            )

    _run(ctx, action)


@app.command()
def chat(
    ctx: typer.Context,
    message: MessageWords = None,
    preset: PresetName = None,
    var: PresetVars = None,
    model: Model = None,
    system: System = None,
    history_name: Annotated[
        str | None,  # not Path: Path("") would be ".", and the empty name must be refused
        typer.Option(
            "--history",
            metavar="FILE",
            help="JSONL conversation: sent first; the new turn is appended once it completes.",
        ),
    ] = None,
    continue_last: Annotated[
        bool,
        typer.Option(
            "-c",
            "--continue",
            help="Continue the last chat run without --history (kept unless OSTREAM_NOHISTORY).",
        ),
    ] = False,
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
    option: ModelOptions = None,
    format: Format = None,
    think: Think = None,
    hide_thinking: HideThinking = False,
    keep_alive: KeepAlive = None,
    image: Images = None,
    jsonl: Jsonl = False,
    verbose: Verbose = False,
    host: Host = None,
    timeout: TimeoutSeconds = None,
    retries: Retries = "2",
    resume: Resume = False,
    interactive: Annotated[
        bool,
        typer.Option(
            "-i",
            "--interactive",
            help="Talk on a terminal: a prompt for each turn, slash commands (/help);"
            " MESSAGE, if given, is the first turn.",
        ),
    ] = False,
    output: OutputFile = None,
    extract: Extract = False,
    extract_last: ExtractLast = False,
    dry_run: DryRun = False,
) -> None:
    """Stream the reply to one chat turn (POST /api/chat).

    The MESSAGE words (and piped stdin, first) form the user message; with -i,
    an interactive conversation on a terminal.
    """

    def action(env: Environment, writer: Writer) -> None:
        from ostream import lastchat
        from ostream.conversation import load_conversation, user_turn
        from ostream.history import save_turn
        from ostream.inputs import load_tools, read_images
        from ostream.run import stream_answer

        if interactive and not (env.stdin_tty and env.stdout_tty):
            raise UsageError("-i needs a terminal on stdin and stdout")
        if interactive and jsonl:
            raise UsageError("-i shows text: --jsonl cannot be used with it")
        request.check_resume(resume, jsonl)
        if history_name is not None and messages is not None:
            raise UsageError("--history and --messages cannot be used together")
        if continue_last and (history_name is not None or messages is not None):
            raise UsageError("-c continues the last chat: not with --history or --messages")
        history = lastchat.to_continue(env.environ) if continue_last else None
        history = history or request.history_path(history_name)
        images = [str(p) for p in image or []]
        if "-" in images and messages == "-":
            raise UsageError("--image - and --messages - cannot both read stdin")
        target = request.target(env, host, timeout, retries)
        found = request.load_preset(env, preset, var)
        body = request.common_body(env, model, option, format, think, keep_alive, found)
        conversation = load_conversation(messages, history, env.piped_stdin, env.environ)
        use_stdin = messages != "-" and "-" not in images
        preset_system = None
        if found is None:
            text = request.prompt(env, message, use_stdin=use_stdin)
        else:
            preset_system, text = request.preset_turn(env, found, message, var, use_stdin)
        if interactive:
            if output is not None or extract or extract_last or dry_run:
                raise UsageError("-i: --output, -x, --extract-last and --dry-run are for one turn")
        elif text is None and not conversation:
            raise UsageError("nothing to send: the conversation is empty and no MESSAGE given")
        elif text is None and messages is None:
            raise UsageError("no message: give MESSAGE words or pipe text on stdin")
        turn = user_turn(text, read_images(images, env.piped_stdin, env.environ) if images else [])
        if not interactive:
            prefix = []
            if system is not None:
                prefix = [{"role": "system", "content": argument_text(system, "-s")}]
            elif preset_system is not None:  # sent, never stored: as -s
                prefix = [{"role": "system", "content": preset_system}]
            body["messages"] = prefix + conversation + turn
        if tools is not None:
            body["tools"] = load_tools(str(tools), env.environ)
        if found is not None:
            found.apply_defaults(body, tools=True)
        if interactive:
            from ostream.interactive import Settings, interact

            system_prompt = argument_text(system, "-s") if system is not None else preset_system
            settings = Settings(
                target,
                body,
                system_prompt,
                show_thinking=not hide_thinking,
                verbose=verbose,
                resume=resume,
            )
            interact(env, writer, settings, conversation, history, turn)
            return
        from ostream.destination import answer_writer

        with answer_writer(
            writer,
            output=output,
            extract=extract,
            extract_last=extract_last,
            jsonl=jsonl,
            dry_run=dry_run,
        ) as out:
            if dry_run:
                return _dry_run(out, target, "/api/chat", body)
            reply = stream_answer(
                target,
                "chat",
                body,
                out,
                jsonl=jsonl,
                show_thinking=not hide_thinking,
                keep=history is not None or lastchat.kept(env.environ),
                verbose=verbose,
                resume=resume,
            )
        if history is not None:
            save_turn(history, [*turn, reply.message()])
        else:
            lastchat.keep(env.environ, [*conversation, *turn, reply.message()])

    _run(ctx, action)


@app.command()
def raw(
    ctx: typer.Context,
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
    timeout: TimeoutSeconds = None,
    retries: Retries = "2",
    dry_run: DryRun = False,
) -> None:
    """Send JSON to any API path, copy the answer to stdout.

    The answer goes to stdout byte for byte, line by line as it arrives.
    """

    def action(env: Environment, writer: Writer) -> None:
        from ostream.raw import request_body
        from ostream.run import raw_request

        target = request.target(env, host, timeout, retries)
        if data is not None and data != "-" and not data.startswith("@"):
            body = request_body(argument_text(data, "-d"), env.piped_stdin, env.environ)
        else:
            body = request_body(data, env.piped_stdin, env.environ)
        verb = (method or ("POST" if body is not None else "GET")).upper()
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", verb):
            raise UsageError(f"-X: {method!r} is not an HTTP method")
        if dry_run:
            from ostream.jsontext import strict_json

            shown = strict_json(body.decode("utf-8")) if body is not None else None
            return _dry_run(writer, target, path, shown, verb)
        raw_request(target, verb, path, body, writer, method_chosen=method is not None)

    _run(ctx, action)


@app.command()
def presets(
    ctx: typer.Context,
    action: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[show NAME]",
            show_default=False,
            help="show NAME: print the preset file NAME (or PATH) as it is.",
            autocompletion=preset_words,
        ),
    ] = None,
    jsonl: Annotated[
        bool,
        typer.Option(
            "--jsonl", help="One JSON line a preset: name, path, kind, description, vars."
        ),
    ] = False,
) -> None:
    """List the saved prompts that -p NAME finds, or show one.

    Looked up in the folders of $OSTREAM_PRESETS (colon-separated), then in
    $XDG_CONFIG_HOME/ostream/presets, as NAME.md or NAME/system.md.
    """

    def action_(env: Environment, writer: Writer) -> None:
        from ostream.presets import listing, shown

        words = action or []
        if not words:
            for line in listing(env.environ, jsonl=jsonl):
                writer.line(line)
        elif words[0] == "show" and len(words) == 2:
            writer.body(shown(argument_text(words[1], "the preset name"), env.environ))
        else:
            raise UsageError("presets takes no argument, or show NAME")

    _run(ctx, action_)


fleet_cli.register(app, _run)
batch_command.register(app, _run)


def main(args: Sequence[str] | None = None, *, env: Environment | None = None) -> int:
    """Run the command line (`args`, else sys.argv) in `env` (else the process's own
    streams and variables); return the exit status."""
    try:
        return int(app(args=args, prog_name="ostream", standalone_mode=False, obj=env))
    except FAILURES as exc:  # before the command line is running: building it
        return conclude(exc, env or Environment.from_process())

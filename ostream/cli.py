"""The command line: parse, check, build the request body, hand over to ostream.run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from ostream import __version__, chat_cli, fleet_cli, presets_cli, raw_cli, request
from ostream.arguments import argument_text
from ostream.batch import command as batch_command
from ostream.click_adapter import OstreamGroup
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
                from ostream.dryrun import show_target_request

                return show_target_request(out, target, "/api/generate", body)
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


chat_cli.register(app, _run)
raw_cli.register(app, _run)
presets_cli.register(app, _run)
fleet_cli.register(app, _run)
batch_command.register(app, _run)


def main(args: Sequence[str] | None = None, *, env: Environment | None = None) -> int:
    """Run the command line (`args`, else sys.argv) in `env` (else the process's own
    streams and variables); return the exit status."""
    try:
        return int(app(args=args, prog_name="ostream", standalone_mode=False, obj=env))
    except FAILURES as exc:  # before the command line is running: building it
        return conclude(exc, env or Environment.from_process())

"""`ostream batch`: the command line around the scheduler (CONTRACT.md, "batch").

Registered on the app by cli.py, as fleet_cli registers models/ps/pull. This
module imports only typer at load time; the work is done in batch/run.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from ostream.environment import Environment
from ostream.errors import UsageError
from ostream.fleet_cli import Hosts
from ostream.output import Writer
from ostream.params import (
    Format,
    KeepAlive,
    Model,
    ModelOptions,
    PresetName,
    PresetVars,
    Run,
    System,
    Think,
    TimeoutSeconds,
)

if TYPE_CHECKING:
    from ostream.batch.jobs import Defaults
    from ostream.presets import Preset


@dataclass(frozen=True)
class Settings:
    """Everything `ostream batch` was asked, parsed."""

    input: str | None
    text: bool
    output: str | None
    unordered: bool
    shard: str | None
    parallel: Sequence[str]
    retries: int
    quiet: bool
    render: Callable[[str], str] | None = None  # a prompt-kind preset, for --text lines


def _defaults(
    env: Environment,
    model: str | None,
    system: str | None,
    options: list[str] | None,
    fmt: str | None,
    think: str | None,
    keep_alive: str | None,
    preset: Preset | None = None,
    values: Mapping[str, str] | None = None,
) -> Defaults:
    """The command line's values, else the preset's (-o key by key), else OSTREAM_MODEL."""
    from ostream.arguments import argument_text
    from ostream.batch.jobs import Defaults
    from ostream.request import given_fields

    given = preset.request_fields() if preset is not None else {}
    name = model or given.get("model") or env.environ.get("OSTREAM_MODEL") or None
    if system is not None:
        system = argument_text(system, "-s")
    elif preset is not None:
        system = preset.system_prompt(values or {})
    fields = given_fields(env, options, fmt, think, keep_alive)
    return Defaults(
        model=argument_text(name, "the model name") if name else None,
        system=system,
        options={**given.get("options", {}), **fields.get("options", {})},
        format=fields.get("format", given.get("format")),
        think=fields.get("think", given.get("think")),
        keep_alive=fields.get("keep_alive", given.get("keep_alive")),
        tools=given.get("tools"),
    )


def _preset(
    env: Environment, name: str | None, var: list[str] | None, text: bool
) -> tuple[Preset | None, dict[str, str], Callable[[str], str] | None]:
    """-p and --var: the preset, its vars' values (checked: exit 2 before anything runs)
    and, for a prompt-kind preset, what turns a --text line into its prompt."""
    from ostream import request
    from ostream.arguments import argument_text

    found = request.load_preset(env, name, var)
    if found is None:
        return None, {}, None
    from ostream.presets import parse_vars

    values = found.values(parse_vars([argument_text(v, "--var") for v in var or []], env.environ))
    if found.kind == "system":
        return found, values, None
    if not text:
        raise UsageError(
            f"preset {found.name} places the input ({{{{input}}}}, {{{{stdin}}}} or "
            "{{args}}): in batch it renders --text lines; give --text, or a preset "
            "without them for JSON jobs"
        )
    return found, values, lambda line: found.render(line, [], values)


def register(app: typer.Typer, run: Run) -> None:
    """Add `batch` to `app`; `run` runs an action as cli.py does."""

    @app.command()
    def batch(
        ctx: typer.Context,
        input: Annotated[
            str | None,
            typer.Argument(
                metavar="[INPUT]",
                show_default=False,
                help="The jobs, one JSON object a line (default: stdin; - is stdin).",
            ),
        ] = None,
        text: Annotated[
            bool, typer.Option("--text", help="Every line of INPUT is a prompt for /api/generate.")
        ] = False,
        preset: PresetName = None,
        var: PresetVars = None,
        model: Model = None,
        system: System = None,
        option: ModelOptions = None,
        format: Format = None,
        think: Think = None,
        keep_alive: KeepAlive = None,
        output: Annotated[
            str | None,
            typer.Option(
                "--output",
                metavar="FILE",
                show_default=False,
                help="Append the result lines to FILE; jobs it holds a success for are skipped "
                "(resume).",
            ),
        ] = None,
        unordered: Annotated[
            bool,
            typer.Option(
                "--unordered", help="Write each result as it finishes, not in input order."
            ),
        ] = False,
        shard: Annotated[
            str | None,
            typer.Option(
                "--shard",
                metavar="I/N",
                show_default=False,
                help="Run only the jobs whose custom_id hashes to I of N (0 <= I < N).",
            ),
        ] = None,
        host: Hosts = None,
        parallel: Annotated[
            list[str] | None,
            typer.Option(
                "--parallel",
                metavar="N|URL=N",
                show_default=False,
                help="Requests at once per host (default 1); URL=N for one host; repeatable.",
            ),
        ] = None,
        timeout: TimeoutSeconds = None,
        retries: Annotated[
            str,
            typer.Option(
                "--retries",
                metavar="N",
                help="Send a job at most N more times after a refused or broken connection, "
                "a 429/503/5xx or a stalled stream, on another host when there is one.",
            ),
        ] = "2",
        quiet: Annotated[
            bool,
            typer.Option(
                "-q",
                "--quiet",
                help="No summary line at the end and no live display (warnings stay).",
            ),
        ] = False,
        dry: Annotated[
            bool,
            typer.Option(
                "--dry-run",
                help="Print each job as the request it would send (custom_id, method, URL "
                "path, body) and send nothing.",
            ),
        ] = False,
    ) -> None:
        """Run many requests, one JSON line each, across one or more servers.

        INPUT holds OpenAI Batch request lines ({"custom_id", "method", "url",
        "body"}) or bare request bodies (with "prompt": /api/generate; with
        "messages": /api/chat). One result line per job, in OpenAI's batch output
        shape, on stdout or appended to --output FILE. Exit 0 when every job
        succeeded, 1 when one failed (its line says why).
        """

        def action(env: Environment, writer: Writer) -> None:
            from ostream.batch.run import dry_run, parse_parallel, run_batch
            from ostream.connection import connection as connect
            from ostream.fleet import parse_hosts

            hosts, connection = parse_hosts(host, env.environ), connect(env, timeout, retries)
            found, values, render = _preset(env, preset, var, text)
            settings = Settings(
                input,
                text,
                output,
                unordered,
                shard,
                parallel or [],
                connection.retries,
                quiet,
                render,
            )
            defaults = _defaults(
                env, model, system, option, format, think, keep_alive, found, values
            )
            if dry:
                parse_parallel(settings.parallel, hosts)  # checked as a run checks it
                return dry_run(env, writer, settings, defaults)
            run_batch(env, settings, defaults, hosts, connection)

        run(ctx, action)

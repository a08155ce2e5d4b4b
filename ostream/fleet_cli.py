"""The commands over several servers: `models`, `ps`, `pull MODEL`.

Registered on the app by cli.py; each parses, builds the host list and hands over
to ostream.fleet (reading), ostream.tables (showing) and ostream.pull (pulling).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ostream.environment import Environment
from ostream.errors import Failed, Failure, combine
from ostream.output import Writer, write_error
from ostream.params import Retries, Run, TimeoutSeconds

if TYPE_CHECKING:
    from ostream.fleet import Answer, Connection, Host


Hosts = Annotated[
    list[str] | None,
    typer.Option(
        "--host",
        metavar="URL",
        show_default=False,
        help="An Ollama server; repeat for several (default: $OSTREAM_HOSTS, comma-separated, "
        "else $OLLAMA_HOST, else http://127.0.0.1:11434).",
    ),
]
TableJsonl = Annotated[
    bool,
    typer.Option("--jsonl", help='One JSON object a line, each with its "host", not a table.'),
]
PullJsonl = Annotated[
    bool,
    typer.Option(
        "--jsonl", help='Every status line the servers send, each with its "host", on stdout.'
    ),
]


def _about(host: Host, failure: Failure) -> str:
    """The failure's message, naming the host unless it does already."""
    message = failure.message or failure.kind
    return message if host.url in message else f"{host.label}: {message}"


def _columns(env: Environment) -> int:
    """The terminal's width ($COLUMNS first, as a shell sets it); 80 when unknown."""
    columns = env.environ.get("COLUMNS", "")
    if not columns.isdigit():
        try:
            columns = str(os.get_terminal_size(env.stdout.fileno()).columns)  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = ""
    return int(columns) if columns.isdigit() and int(columns) >= 20 else 80


def _show(
    env: Environment,
    writer: Writer,
    answers: Sequence[Answer[Any]],
    table: Callable[..., list[str]],
    jsonl: bool,
) -> None:
    """Write the answers as a table (or JSON lines); end as the failures say.

    On a terminal every host has its place in the table (a failure or "no models"
    as a note); elsewhere the table holds only records and failures go to stderr."""
    from ostream.ndjson import compact
    from ostream.tables import utc_now

    failed = [(a.host, a.failure) for a in answers if a.failure is not None]
    if len(answers) == 1 and failed:
        raise Failed(combine([failed[0][1]], 1))
    on_terminal = env.stdout_tty and not jsonl
    if jsonl:
        for answer in answers:
            for item in answer.items:
                writer.line(compact({"host": answer.host.url, **item.raw}))
    elif on_terminal or any(a.items for a in answers):
        shown = answers if on_terminal else [a for a in answers if a.items]
        width = _columns(env) if on_terminal else None
        for line in table(shown, now=utc_now(), width=width, safe=env.stdout_tty):
            writer.line(line.encode("utf-8"))
    if not failed:
        return
    if not on_terminal:
        for host, failure in failed:
            write_error(env, _about(host, failure))
    raise Failed(combine([failure for _, failure in failed], len(answers)))


def _pull(
    env: Environment,
    writer: Writer,
    hosts: list[Host],
    connection: Connection,
    model: str,
    jsonl: bool,
) -> None:
    """Pull `model` on every host, showing it as the streams allow; end as the hosts did."""
    import contextlib

    from ostream.ndjson import compact
    from ostream.pull import Bars, Pulled, Status, pull

    bars = Bars(hosts, env.stderr, color=env.color) if env.stderr_tty and not jsonl else None
    later: list[str] = []  # messages held back while the bars are drawn

    def on_status(event: Status) -> None:
        if jsonl:
            writer.line(compact({"host": event.host.url, **event.obj}))
        elif bars is not None:
            bars.status(event)

    def on_done(event: Pulled) -> None:
        if bars is not None:
            bars.done(event)
        if event.failure is None:
            if not jsonl and bars is None:
                writer.info(f"{event.host.label}: pulled {model}\n")
        elif len(hosts) > 1:
            message = _about(event.host, event.failure)
            if bars is not None:
                later.append(message)
            else:
                write_error(env, message)

    with bars if bars is not None else contextlib.nullcontext():
        results = pull(hosts, connection, model, on_status, on_done)
    for message in later:
        write_error(env, message)
    failed = [p.failure for p in results if p.failure is not None]
    if failed:
        raise Failed(combine(failed, len(hosts), every_host_must_succeed=True))


def _listing(run: Run, read: str, table: str) -> Callable[..., None]:
    """A command that reads every host with fleet.`read` and shows it with tables.`table`."""

    def command(
        ctx: typer.Context,
        jsonl: TableJsonl = False,
        host: Hosts = None,
        timeout: TimeoutSeconds = None,
        retries: Retries = "2",
    ) -> None:
        def action(env: Environment, writer: Writer) -> None:
            from ostream import fleet, tables
            from ostream.connection import connection as connect
            from ostream.fleet import parse_hosts

            hosts, connection = parse_hosts(host, env.environ), connect(env, timeout, retries)
            answers = getattr(fleet, read)(hosts, connection)
            _show(env, writer, answers, getattr(tables, table), jsonl)

        run(ctx, action)

    return command


def register(app: typer.Typer, run: Run) -> None:
    """Add `models`, `ps` and `pull` to `app`; `run` runs an action as cli.py does."""

    for name, summary, read, table in (
        (
            "models",
            "List the models on every host (GET /api/tags), asked at once.",
            "models",
            "models_table",
        ),
        (
            "ps",
            "List the models loaded on every host (GET /api/ps).\n\n"
            "Size, share in VRAM (the rest is in RAM), until when it stays loaded.",
            "loaded",
            "loaded_table",
        ),
    ):
        app.command(name, help=summary)(_listing(run, read, table))

    @app.command()
    def pull(
        ctx: typer.Context,
        model: Annotated[
            str, typer.Argument(metavar="MODEL", help="The model to pull, as NAME[:TAG].")
        ],
        jsonl: PullJsonl = False,
        host: Hosts = None,
        timeout: TimeoutSeconds = None,
        retries: Retries = "2",
    ) -> None:
        """Pull MODEL onto every host at once (POST /api/pull).

        On a terminal, a progress bar per host on stderr; otherwise a line per
        host on stderr as it finishes.
        """

        def action(env: Environment, writer: Writer) -> None:
            from ostream.connection import connection as connect
            from ostream.fleet import parse_hosts

            hosts, connection = parse_hosts(host, env.environ), connect(env, timeout, retries)
            _pull(env, writer, hosts, connection, model, jsonl)

        run(ctx, action)

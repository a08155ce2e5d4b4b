"""`ostream raw`: any JSON to any API path, the answer copied to stdout.

Registered on the app by cli.py, as fleet_cli registers models/ps/pull.
"""

from __future__ import annotations

import re
from typing import Annotated

import typer

from ostream import request
from ostream.arguments import argument_text
from ostream.environment import Environment
from ostream.errors import UsageError
from ostream.output import Writer
from ostream.params import DryRun, Host, Retries, Run, TimeoutSeconds


def register(app: typer.Typer, run: Run) -> None:
    """Add `raw` to `app`; `run` runs an action as cli.py does."""

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
                from ostream.dryrun import show_target_request

                return show_target_request(writer, target, path, shown, verb)
            raw_request(target, verb, path, body, writer, method_chosen=method is not None)

        run(ctx, action)

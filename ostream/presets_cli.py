"""`ostream presets`: list the saved prompts -p NAME finds, or show one.

Registered on the app by cli.py, as fleet_cli registers models/ps/pull.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ostream.arguments import argument_text
from ostream.complete import preset_words
from ostream.environment import Environment
from ostream.errors import UsageError
from ostream.output import Writer
from ostream.params import Run


def register(app: typer.Typer, run: Run) -> None:
    """Add `presets` to `app`; `run` runs an action as cli.py does."""

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

        run(ctx, action_)

"""The command-line parameters that generate and chat share, declared once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ostream.complete import model_names, preset_names, think_values
from ostream.guard import Action

# How cli.py runs a command's action; each command module's register() is handed one.
Run = Callable[[typer.Context, Action], None]


def _words(name: str, what: str) -> Any:  # typer.Argument is typed as Any
    return typer.Argument(
        metavar=f"[{name}]...",
        show_default=False,
        help=f"{what}, words joined by spaces (after piped stdin).",
    )


PromptWords = Annotated[list[str] | None, _words("PROMPT", "The prompt")]
MessageWords = Annotated[list[str] | None, _words("MESSAGE", "The user message")]
Model = Annotated[
    str | None,
    typer.Option(
        "-m",
        "--model",
        metavar="NAME",
        show_default=False,
        help="Model name (default: $OSTREAM_MODEL).",
        autocompletion=model_names,
    ),
]
System = Annotated[
    str | None, typer.Option("-s", "--system", metavar="TEXT", help="System prompt.")
]
ModelOptions = Annotated[
    list[str] | None,
    typer.Option(
        "-o",
        "--option",
        metavar="KEY=VALUE",
        show_default=False,
        help="Model option, repeatable; VALUE is JSON when it parses, else a string.",
    ),
]
Format = Annotated[
    str | None,
    typer.Option(
        "--format", metavar="json|SCHEMA", help="json, or a JSON schema inline or as @file.json."
    ),
]
Think = Annotated[
    str | None,
    typer.Option(
        "--think",
        metavar="true|false|low|medium|high|max",
        help="Ask for thinking, or not.",
        autocompletion=think_values,
    ),
]
HideThinking = Annotated[
    bool, typer.Option("--hide-thinking", help="Do not show thinking on stderr.")
]
KeepAlive = Annotated[
    str | None,
    typer.Option(
        "--keep-alive",
        metavar="DURATION",
        help="How long the model stays loaded: 5m, 1h30m, or seconds (0 unloads, -1 forever).",
    ),
]
Images = Annotated[
    list[Path] | None,
    typer.Option(
        "--image", metavar="PATH", show_default=False, help="Image file to attach, repeatable."
    ),
]
Jsonl = Annotated[
    bool, typer.Option("--jsonl", help="Write every object the server sends as one JSON line.")
]
Verbose = Annotated[
    bool,
    typer.Option("-v", "--verbose", help="Print timing and token statistics on stderr afterwards."),
]
Host = Annotated[
    str | None,
    typer.Option(
        "--host",
        metavar="URL",
        show_default=False,
        help="Ollama server (default: $OLLAMA_HOST, else http://127.0.0.1:11434).",
    ),
]
# Strings, parsed by ostream.options: Click's float and int take 1_0, " 1", "1e3",
# "inf", and word their refusals their own way ("is not a valid float range").
TimeoutSeconds = Annotated[
    str | None,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        show_default=False,
        help="Limit for connecting and for each wait for data, the first token included "
        "(default: 10s to connect, no limit on reading).",
    ),
]
Retries = Annotated[
    str,
    typer.Option(
        "--retries",
        metavar="N",
        help="Retry a failed connection or a busy server (429/503) N times, "
        "with backoff, before any output (and resume at most N times with --resume).",
    ),
]
Resume = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="When the stream breaks after text was written, ask the model to go on "
        "from there (text mode; at most --retries times).",
    ),
]
PresetName = Annotated[
    str | None,
    typer.Option(
        "-p",
        "--preset",
        metavar="NAME|PATH",
        show_default=False,
        help="A saved prompt: NAME in $OSTREAM_PRESETS or ~/.config/ostream/presets, "
        "or a file (see: ostream presets).",
        autocompletion=preset_names,
    ),
]
PresetVars = Annotated[
    list[str] | None,
    typer.Option(
        "--var",
        metavar="NAME=VALUE",
        show_default=False,
        help="A value for the preset's {{NAME}}, repeatable; NAME=@FILE reads a file.",
    ),
]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Print the request (method, URL, body) as JSON and send nothing."
    ),
]
OutputFile = Annotated[
    str | None,
    typer.Option(
        "--output",
        metavar="FILE",
        show_default=False,
        help="Write the answer to FILE, replaced only once the answer completed.",
    ),
]
Extract = Annotated[
    bool,
    typer.Option(
        "-x", "--extract", help="Write only the contents of the answer's first code block."
    ),
]
ExtractLast = Annotated[
    bool,
    typer.Option("--extract-last", help="Write only the contents of its last code block."),
]

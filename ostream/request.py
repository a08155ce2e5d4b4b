"""What generate, chat and raw build a request from: the server (--host, --timeout,
--retries), the body's common fields, the prompt from stdin and the words, a preset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ostream.arguments import argument_text
from ostream.environment import Environment
from ostream.errors import UsageError

if TYPE_CHECKING:
    from ostream.presets import Preset
    from ostream.run import Target


def target(env: Environment, host: str | None, timeout: str | None, retries: str) -> Target:
    from ostream.connection import Host, connection
    from ostream.host import resolve
    from ostream.run import Target

    return Target(Host(resolve(host, env.environ)), connection(env, timeout, retries))


def common_body(
    env: Environment,
    model: str | None,
    options: list[str] | None,
    fmt: str | None,
    think: str | None,
    keep_alive: str | None,
    preset: Preset | None = None,
) -> dict[str, Any]:
    name = model or (preset and preset.settings.get("model")) or env.environ.get("OSTREAM_MODEL")
    if not name:
        raise UsageError("no model: pass -m NAME or set OSTREAM_MODEL")
    body: dict[str, Any] = {"model": argument_text(name, "the model name"), "stream": True}
    body.update(given_fields(env, options, fmt, think, keep_alive))
    if preset is not None:
        preset.apply_defaults(body, tools=False)
    return body


def given_fields(
    env: Environment,
    options: list[str] | None,
    fmt: str | None,
    think: str | None,
    keep_alive: str | None,
) -> dict[str, Any]:
    """The request fields -o, --format, --think and --keep-alive give, parsed; only
    those given (generate, chat and batch's defaults)."""
    from ostream import options as parse

    fields: dict[str, Any] = {}
    if options:
        fields["options"] = parse.parse_options(
            [argument_text(o, f"-o {o.partition('=')[0]}") for o in options]
        )
    if fmt is not None:
        fields["format"] = parse.parse_format(
            fmt if fmt.startswith("@") else argument_text(fmt, "--format"), env.environ
        )
    if think is not None:
        fields["think"] = parse.parse_think(think)
    if keep_alive is not None:
        fields["keep_alive"] = parse.parse_keep_alive(keep_alive)
    return fields


def prompt(env: Environment, words: list[str] | None, *, use_stdin: bool = True) -> str | None:
    from ostream.inputs import stdin_text
    from ostream.prompt import assemble

    piped = stdin_text(env.piped_stdin, env.environ) if use_stdin else None
    return assemble(piped, [argument_text(word, "a word of the prompt") for word in words or []])


def load_preset(env: Environment, name: str | None, var: list[str] | None) -> Preset | None:
    """The preset -p names (None without -p; presets.py is imported only then)."""
    if name is None:
        if var:
            raise UsageError("--var gives a value to a preset's {{NAME}}: it needs -p PRESET")
        return None
    from ostream.presets import load_preset

    return load_preset(argument_text(name, "-p"), env.environ)


def preset_turn(
    env: Environment,
    preset: Preset,
    words: list[str] | None,
    var: list[str] | None,
    use_stdin: bool,
) -> tuple[str | None, str | None]:
    """(system prompt, prompt) as the preset makes them from stdin, the words and --var."""
    from ostream.inputs import stdin_text
    from ostream.presets import parse_vars

    piped = stdin_text(env.piped_stdin, env.environ) if use_stdin else None
    spoken = [argument_text(word, "a word of the prompt") for word in words or []]
    return preset.turn(
        piped, spoken, parse_vars([argument_text(v, "--var") for v in var or []], env.environ)
    )


def check_resume(resume: bool, jsonl: bool) -> None:
    if resume and jsonl:
        raise UsageError("--resume continues text: it cannot be used with --jsonl")


def history_path(name: str | None) -> Path | None:
    """--history's file; `-` and the empty name are refused rather than taken literally."""
    if name == "":
        raise UsageError("--history: the file name is empty")
    if name == "-":
        raise UsageError(
            "--history takes a file that is read and then appended to, not - (stdin);"
            " for a conversation on stdin use --messages -, for a file named - write ./-"
        )
    return Path(name) if name is not None else None

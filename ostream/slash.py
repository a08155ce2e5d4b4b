"""The slash commands of `chat -i`: each changes the session or what the next turn sends."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ostream.errors import OstreamError, UsageError
from ostream.guard import report

if TYPE_CHECKING:
    from ostream.interactive import Session
    from ostream.lineinput import LineReader


class Bye(Exception):
    """/bye: the session ends (exit 0)."""


Command = Callable[["Session", "LineReader", str], "str | None"]

HELP: dict[str, str] = {
    "/help": "this list",
    "/bye": "end the session (or Ctrl-D on an empty line)",
    "/clear": "an empty conversation (the --history file is left as it is)",
    "/model NAME": "the model for the next turns (Tab: the server's models)",
    "/system TEXT": "the system prompt (/system alone removes it)",
    "/set KEY=VALUE": "a model option, as -o (/set alone lists them)",
    "/think LEVEL": "true, false, low, medium, high or max",
    "/save FILE": "write the conversation to FILE (as --history); turns go on there",
    "/save! FILE": "the same, also over a FILE that holds another conversation",
    "/load FILE": "continue the conversation in FILE; turns go on there",
    "/retry": "ask the last message again (the new reply replaces the old)",
    "/continue": "go on with a reply cut by Ctrl-C, a broken stream or its length limit",
    "/edit": "write the message in $EDITOR (then Enter sends it)",
}
WIDTH = 80  # the help fits a terminal of 80 columns
KEYS = (
    "Enter sends; Alt-Enter or Esc Enter starts a new line; a paste arrives whole.",
    "Ctrl-C stops a reply (the message comes back) or clears the line.",
    "A message that starts with / is written //.",
)
NAMES = tuple(usage.split()[0] for usage in HELP)


def run_command(session: Session, reader: LineReader, line: str) -> str | None:
    """Run the slash command `line`; a string is the next prompt's input line."""
    name, _, arg = line.strip().partition(" ")
    command = _COMMANDS.get(name)
    if command is None:
        session.error(f"unknown command {name}; /help lists them")
        return None
    try:
        return command(session, reader, arg.strip())
    except OstreamError as exc:
        report(exc, session.env)
        return None


def _help(session: Session, reader: LineReader, arg: str) -> None:
    import textwrap

    width = max(map(len, HELP))
    rows = [
        textwrap.fill(
            what,
            WIDTH - 1,  # a full last column makes some terminals wrap early
            initial_indent=f"  {usage:<{width}}  ",
            subsequent_indent=" " * (width + 4),
            break_long_words=False,
            break_on_hyphens=False,
        )
        for usage, what in HELP.items()
    ]
    session.say("\n".join([*rows, *KEYS]))


def _bye(session: Session, reader: LineReader, arg: str) -> None:
    raise Bye


def _clear(session: Session, reader: LineReader, arg: str) -> None:
    session.messages, session.cut, session.unsaved = [], None, []
    note = ""
    if session.path is not None:
        note = f"; {session.path} is left as it was and no longer written (/save FILE)"
        session.path = None
    session.say(f"ostream: an empty conversation{note}")


def _model(session: Session, reader: LineReader, arg: str) -> None:
    if arg:
        session.settings.body["model"] = arg
    session.say(f"ostream: model {session.settings.body['model']}")


def _system(session: Session, reader: LineReader, arg: str) -> None:
    session.settings.system = arg or None
    session.say("ostream: system prompt " + ("set" if arg else "removed"))


def _set(session: Session, reader: LineReader, arg: str) -> None:
    from ostream.ndjson import compact
    from ostream.options import parse_options

    body = session.settings.body
    if arg:
        try:
            new = parse_options([arg])
        except UsageError:
            raise UsageError(f"/set takes KEY=VALUE, not {arg!r}") from None
        body["options"] = {**body.get("options", {}), **new}
    shown = compact(body.get("options", {})).decode()
    session.say(f"ostream: options {shown}")


def _think(session: Session, reader: LineReader, arg: str) -> None:
    from ostream.options import parse_think

    body = session.settings.body
    if arg:
        try:
            body["think"] = parse_think(arg)
        except UsageError as exc:
            raise UsageError(exc.message.replace("--think", "/think")) from None
    think = body.get("think")
    session.say(f"ostream: think {'(the model decides)' if think is None else think}")


def _save(session: Session, reader: LineReader, arg: str, replace: bool = False) -> None:
    """/save FILE keeps a FILE that holds messages of another conversation than this
    session's own file; /save! FILE replaces it."""
    from ostream.history import read_history, save_conversation

    command = "/save!" if replace else "/save"
    path = _file(arg, command, session.env.environ)
    # The checks --history makes; a file that is no conversation is kept.
    held = read_history(path, session.env.environ, command)
    ours = session.path is not None and os.path.realpath(session.path) == os.path.realpath(path)
    if held and not ours and not replace:
        raise UsageError(f"/save: {path} exists; /save! {arg} to replace it")
    save_conversation(path, session.messages)
    session.path, session.unsaved = path, []
    session.say(f"ostream: {len(session.messages)} messages saved in {path}; turns go on there")


def _save_replacing(session: Session, reader: LineReader, arg: str) -> None:
    _save(session, reader, arg, replace=True)


def _load(session: Session, reader: LineReader, arg: str) -> None:
    from ostream.history import read_history

    path = _file(arg, "/load", session.env.environ)
    if not path.exists():
        raise UsageError(f"/load: no file {path}")
    session.messages = read_history(path, session.env.environ, "/load")
    session.path, session.cut, session.unsaved = path, None, []
    session.say(f"ostream: {len(session.messages)} messages from {path}; turns go on there")


def _file(arg: str, command: str, environ: Mapping[str, str]) -> Path:
    if not arg:
        raise UsageError(f"{command} takes a FILE")
    home = environ.get("HOME")
    if home and (arg == "~" or arg.startswith("~/")):  # the session's HOME, as the shell's
        return Path(home + arg[1:])
    return Path(os.path.expanduser(arg))


def _retry(session: Session, reader: LineReader, arg: str) -> None:
    session.retry()


def _continue(session: Session, reader: LineReader, arg: str) -> None:
    session.continue_reply()


def _edit(session: Session, reader: LineReader, arg: str) -> str:
    return edit(arg, session.env.environ)


def edit(text: str, environ: Mapping[str, str]) -> str:
    """`text` as the user leaves it in $VISUAL or $EDITOR (else vi), without the last
    newline editors add."""
    command = shlex.split(environ.get("VISUAL") or environ.get("EDITOR") or "vi")
    fd, name = tempfile.mkstemp(prefix="ostream-", suffix=".md")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        # Ctrl-C in the editor is the editor's: the session ignores it meanwhile.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            status = subprocess.call([*command, name], preexec_fn=_default_sigint)
        except OSError as exc:
            raise UsageError(f"/edit: cannot run {command[0]}: {exc.strerror or exc}") from None
        finally:
            signal.signal(signal.SIGINT, previous)
        if status != 0:
            raise UsageError(f"/edit: {command[0]} exited with status {status}; nothing kept")
        with open(name, encoding="utf-8", errors="replace") as handle:
            edited = handle.read()
    finally:
        os.unlink(name)
    return edited[:-1] if edited.endswith("\n") else edited


def _default_sigint() -> None:
    """In the editor's process: SIGINT as usual (an ignored one would stay ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


_COMMANDS: dict[str, Command] = {
    "/help": _help,
    "/bye": _bye,
    "/clear": _clear,
    "/model": _model,
    "/system": _system,
    "/set": _set,
    "/think": _think,
    "/save": _save,
    "/save!": _save_replacing,
    "/load": _load,
    "/retry": _retry,
    "/continue": _continue,
    "/edit": _edit,
}


def complete_args(command: str) -> Any:
    """Which kind of argument `command` takes, for completion: models, think, file, None."""
    return {
        "/model": "models",
        "/think": "think",
        "/save": "file",
        "/save!": "file",
        "/load": "file",
    }.get(command)

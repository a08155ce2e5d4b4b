"""The input line of `chat -i`, by prompt_toolkit: editing, history, completion, paste.

Only `chat -i` imports this module, so no other command pays for prompt_toolkit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from ostream.environment import Environment
from ostream.run import Target
from ostream.slash import NAMES, complete_args

PROMPT = ">>> "
CONTINUATION = "... "


def history_file(environ: Mapping[str, str]) -> Path | None:
    """Where input lines are kept: $XDG_STATE_HOME/ostream/input_history (an XDG
    directory must be absolute), else ~/.local/state/...; None with OSTREAM_NOHISTORY."""
    if "OSTREAM_NOHISTORY" in environ:
        return None
    state = environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):
        home = environ.get("HOME") or os.path.expanduser("~")
        state = os.path.join(home, ".local", "state")
    return Path(state) / "ostream" / "input_history"


def _history(environ: Mapping[str, str]) -> History:
    path = history_file(environ)
    if path is None:
        return InMemoryHistory()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))  # private
    except OSError:
        return InMemoryHistory()  # a read-only home: the session works, without a memory
    return FileHistory(str(path))


class SlashCompleter(Completer):
    """Slash command names; after /model the server's models (asked once, quickly),
    after /think its levels, after /save and /load file names."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._models: list[str] | None = None
        self._paths = PathCompleter(expanduser=True)

    def models(self) -> list[str]:
        if self._models is None:
            from dataclasses import replace

            from ostream.fleet import TAB_TOTAL, TAB_WAIT, model_names

            connection = replace(self._target.connection, timeout=TAB_WAIT, retries=0)
            try:
                host = self._target.host
                self._models = [name for name, _ in model_names(host, connection, within=TAB_TOTAL)]
            except Exception:  # a Tab never prints an error
                self._models = []
        return self._models

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        text = document.text_before_cursor
        if not text.startswith("/") or "\n" in text:
            return
        command, space, arg = text.partition(" ")
        if not space:
            for name in NAMES:
                if name.startswith(command):
                    yield Completion(name, -len(command))
            return
        kind = complete_args(command)
        if kind == "file":
            yield from self._paths.get_completions(Document(arg, len(arg)), complete_event)
            return
        if kind == "models":
            words: list[str] = self.models()
        elif kind == "think":
            from ostream.complete import think_values

            words = think_values("")
        else:
            return
        for word in words:
            if word.startswith(arg):
                yield Completion(word, -len(arg))


def _keys() -> KeyBindings:
    keys = KeyBindings()

    @keys.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        """Alt-Enter (Esc Enter): a new line in the message instead of sending it."""
        event.current_buffer.insert_text("\n")

    return keys


class LineReader:
    """Reads one message at a time from the terminal."""

    def __init__(self, env: Environment, target: Target) -> None:
        self._session: PromptSession[str] = PromptSession(
            history=_history(env.environ),
            completer=SlashCompleter(target),
            complete_while_typing=False,
            key_bindings=_keys(),
            enable_open_in_editor=True,
            prompt_continuation=CONTINUATION,
            placeholder="Send a message (/help for help)",
        )

    def read(self, default: str = "") -> str:
        """The next message; raises EOFError (Ctrl-D) or KeyboardInterrupt (Ctrl-C)."""
        return self._session.prompt(PROMPT, default=default)

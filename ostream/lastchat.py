"""`chat -c`: the last conversation of a `chat` without --history, kept in
$XDG_STATE_HOME/ostream/last-chat.jsonl (the --history format and rules), unless
OSTREAM_NOHISTORY is set."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ostream.errors import UsageError

FILE = "last-chat.jsonl"


def state_dir(environ: Mapping[str, str]) -> Path:
    """$XDG_STATE_HOME/ostream, else ~/.local/state/ostream (a relative value is ignored)."""
    state = environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):
        state = os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return Path(state) / "ostream"


def kept(environ: Mapping[str, str]) -> bool:
    return "OSTREAM_NOHISTORY" not in environ


def to_continue(environ: Mapping[str, str]) -> Path:
    """The file `chat -c` continues, as a --history file; none is a usage error."""
    if not kept(environ):
        raise UsageError("chat -c: no conversation is kept while OSTREAM_NOHISTORY is set")
    path = state_dir(environ) / FILE
    if not path.is_file():
        raise UsageError(f"chat -c: no earlier chat to continue (none in {path.parent})")
    return path


def keep(environ: Mapping[str, str], messages: list[dict[str, Any]]) -> None:
    """Keep `messages` as the last conversation; quietly not when that cannot be done
    (a read-only home): the user did not ask for it."""
    if not kept(environ):
        return
    from ostream.history import replace_conversation

    directory = state_dir(environ)
    with contextlib.suppress(OSError):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        replace_conversation(directory / FILE, messages)

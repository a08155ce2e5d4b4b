"""What Tab offers: --think's words, -p's preset names, and -m's model names from the
server's /api/tags.

params.py imports this module on every run, so nothing here imports requests (or
anything else heavy) at module level: the HTTP call is imported inside model_names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import typer

from ostream.environment import Environment


def think_values(incomplete: str) -> list[str]:
    """--think's fixed values, those that start with what was typed."""
    from ostream.options import THINK_LEVELS

    return [word for word in ("true", "false", *THINK_LEVELS) if word.startswith(incomplete)]


def preset_names(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """The presets (name, description) that start with what was typed."""
    try:
        from ostream.presets import available, load_preset

        environ = _environ(ctx)
        found = []
        for name, _ in available(environ):
            if name.startswith(incomplete):
                try:
                    description = load_preset(name, environ).description
                except Exception:
                    description = ""
                found.append((name, description))
        return found
    except Exception:  # a Tab never prints an error into the user's command line
        return []


def preset_words(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """`ostream presets show NAME`: the word show, then the preset names."""
    if not ctx.params.get("action"):
        return [("show", "print a preset")] if "show".startswith(incomplete) else []
    return preset_names(ctx, incomplete)


def model_names(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """The server's models (name, size) that start with what was typed; the server is
    --host when the line being completed gives it before the cursor, else OLLAMA_HOST.
    Nothing, silently, when the server is down, slow, or answers something else."""
    try:
        return [(name, size) for name, size in _tags(ctx) if name.startswith(incomplete)]
    except Exception:  # a Tab never prints an error into the user's command line
        return []


def _tags(ctx: typer.Context) -> list[tuple[str, str]]:
    from ostream.client import api_key
    from ostream.fleet import TAB_TOTAL, TAB_WAIT, Connection, Host, model_names
    from ostream.host import resolve

    environ = _environ(ctx)
    host = ctx.params.get("host")
    base = resolve(host if isinstance(host, str) else None, environ)
    connection = Connection(api_key(environ), timeout=TAB_WAIT, retries=0)
    return model_names(Host(base), connection, within=TAB_TOTAL)


def _environ(ctx: typer.Context) -> Mapping[str, str]:
    """The run's environment variables: the Environment the command line runs in."""
    env = ctx.find_root().obj
    return env.environ if isinstance(env, Environment) else os.environ

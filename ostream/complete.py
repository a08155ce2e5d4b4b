"""What Tab offers: --think's words, -p's preset names, and -m's model names from the
server's /api/tags.

params.py imports this module on every run, so nothing here imports requests (or
anything else heavy) at module level: the HTTP call is imported inside model_names.
"""

from __future__ import annotations

import os

import typer

# A Tab must not hang: seconds to connect and for each wait for data, and for the whole answer.
TAGS_WAIT = 0.5
TAGS_TOTAL = 1.0
TAGS_LIMIT = 4 << 20  # bytes: a few thousand models


def think_values(incomplete: str) -> list[str]:
    """--think's fixed values, those that start with what was typed."""
    from ostream.options import THINK_LEVELS

    return [word for word in ("true", "false", *THINK_LEVELS) if word.startswith(incomplete)]


def preset_names(incomplete: str) -> list[tuple[str, str]]:
    """The presets (name, description) that start with what was typed."""
    try:
        from ostream.presets import available, load_preset

        found = []
        for name, _ in available(os.environ):
            if name.startswith(incomplete):
                try:
                    description = load_preset(name, os.environ).description
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
    return preset_names(incomplete)


def model_names(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """The server's models (name, size) that start with what was typed; the server is
    --host when the line being completed gives it before the cursor, else OLLAMA_HOST.
    Nothing, silently, when the server is down, slow, or answers something else."""
    try:
        return [
            (name, size)
            for name, size in _tags(ctx.params.get("host"))
            if name.startswith(incomplete)
        ]
    except Exception:  # a Tab never prints an error into the user's command line
        return []


def _tags(host: object) -> list[tuple[str, str]]:
    from ostream.host import resolve

    base = resolve(host if isinstance(host, str) else None, os.environ)
    key = os.environ.get("OLLAMA_API_KEY", "").strip().strip("\"'")
    return server_models(base, key or None)


def server_models(base_url: str, api_key: str | None) -> list[tuple[str, str]]:
    """The models (name, size) the server at `base_url` has, from /api/tags, within
    TAGS_TOTAL seconds; raises on any failure (the caller offers nothing then)."""
    import json
    import time

    from ostream.client import Client

    client = Client(base_url, api_key=api_key, timeout=TAGS_WAIT, retries=0)
    deadline = time.monotonic() + TAGS_TOTAL
    body = bytearray()
    try:
        with client.open("GET", "/api/tags") as response:
            if response.status != 200:
                return []
            for data in response.chunks():
                body += data
                if time.monotonic() > deadline or len(body) > TAGS_LIMIT:
                    return []
    finally:
        client.close()
    models = json.loads(body)["models"]
    found: dict[str, str] = {}  # name -> size, in the server's order, each name once
    for model in models:
        name = model.get("name") or model.get("model")
        if isinstance(name, str) and name:
            size = (model.get("details") or {}).get("parameter_size")
            found.setdefault(name, size if isinstance(size, str) else "")
    return list(found.items())

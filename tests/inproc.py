"""Helpers for running ostream in-process: a Writer on memory buffers, the CLI by CliRunner."""

from __future__ import annotations

import io
from typing import Any

from typer.testing import CliRunner, Result

from ostream.cli import app
from ostream.environment import Environment
from ostream.output import Streams, Writer
from ostream.testing import FakeOllama

runner = CliRunner()


class Recorder(io.BytesIO):
    """A binary stream that remembers each flush, to prove per-read writes."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes: list[bytes] = []
        self._mark = 0

    def flush(self) -> None:
        value = self.getvalue()
        self.flushes.append(value[self._mark :])
        self._mark = len(value)


def make_writer(*, tty: bool = False, err_tty: bool = False, color: bool = False) -> Writer:
    """A Writer whose stdout and stderr are Recorders; the flags say what is a terminal."""
    return Writer(Streams(Recorder(), Recorder(), tty, err_tty, color))


def environment(url: str | None = None, stdin: bytes | None = None, **settings: Any) -> Environment:
    """An Environment on memory buffers for `main(args, env=...)`; `url` is its OLLAMA_HOST
    unless `environ` is given, `stdin` the bytes piped in (None: closed)."""
    if url is not None:
        settings.setdefault("environ", {"OLLAMA_HOST": url})
    return Environment(
        stdout=io.BytesIO(),
        stderr=io.BytesIO(),
        stdin=io.BytesIO(stdin) if stdin is not None else None,
        **settings,
    )


def out(where: Writer | Streams) -> bytes:
    """All that a Writer, or a command run in an Environment, wrote to stdout."""
    streams = where.streams if isinstance(where, Writer) else where
    return streams.stdout.getvalue()  # type: ignore[union-attr]


def err(where: Writer | Streams) -> bytes:
    """All that a Writer, or a command run in an Environment, wrote to stderr."""
    streams = where.streams if isinstance(where, Writer) else where
    return streams.stderr.getvalue()  # type: ignore[attr-defined]


def invoke(
    server: FakeOllama | None,
    *args: str,
    input: str | bytes | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    """`ostream args` in-process against `server`, the user's settings cleared, no colour."""
    base = {
        "OLLAMA_HOST": server.url if server else "",
        "OSTREAM_MODEL": "",
        "OLLAMA_API_KEY": "",
        "NO_COLOR": "1",
    }
    return runner.invoke(app, list(args), input=input, env={**base, **(env or {})})


def sent(server: FakeOllama) -> dict[str, Any]:
    """The JSON body of the last request `server` received."""
    body: dict[str, Any] = server.requests[-1].json
    return body

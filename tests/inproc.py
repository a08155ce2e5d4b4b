"""Helpers for running ostream in-process: a Writer on memory buffers, the CLI by CliRunner."""

from __future__ import annotations

import io
from typing import Any

from typer.testing import CliRunner, Result

from ostream.cli import app
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


def out(writer: Writer) -> bytes:
    """All that `writer` wrote to stdout."""
    return writer.streams.stdout.getvalue()  # type: ignore[attr-defined]


def err(writer: Writer) -> bytes:
    """All that `writer` wrote to stderr."""
    return writer.streams.stderr.getvalue()  # type: ignore[attr-defined]


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

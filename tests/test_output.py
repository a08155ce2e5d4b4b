"""What stdout gets, write by write: an answer that arrives in one read is one write(2),
its final newline included, so answers that share a pipe never share a line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from ostream.output import Streams, Writer
from ostream.stream import Streamer
from tests.fake_ollama import FakeOllama
from tests.proc import env_for


class CountingPipe(io.FileIO):
    """The write end of a pipe; each write() is one os.write, recorded."""

    def __init__(self, fd: int) -> None:
        super().__init__(fd, "wb")
        self.writes: list[bytes] = []

    def write(self, data: Any) -> int:
        self.writes.append(bytes(data))
        return super().write(data)


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


@pytest.mark.parametrize(
    ("kind", "text", "final"),
    [
        ("generate", "Paris", {"response": "", "done": True}),
        ("generate", "Paris", {"response": ".", "done": True}),  # text in the done line too
        ("chat", "Paris", {"message": {"role": "assistant", "content": ""}, "done": True}),
        ("generate", "two\nlines", {"response": "", "done": True}),
    ],
)
def test_a_one_read_answer_is_one_write_newline_included(
    kind: str, text: str, final: dict[str, Any]
) -> None:
    first = {"response": text} if kind == "generate" else {"message": {"content": text}}
    read, write = os.pipe()
    try:
        with CountingPipe(write) as pipe:
            writer = Writer(Streams(pipe, io.BytesIO()))
            streamer = Streamer(kind, writer, jsonl=False, show_thinking=True, keep=False)
            streamer.run([_line({**first, "done": False}) + _line(final)])
            writer.finish()
            expected = (text + final.get("response", "") + "\n").encode()
            assert pipe.writes == [expected]
    finally:
        os.close(read)


def test_a_done_line_in_a_later_read_still_ends_the_line() -> None:
    read, write = os.pipe()
    try:
        with CountingPipe(write) as pipe:
            writer = Writer(Streams(pipe, io.BytesIO()))
            streamer = Streamer("generate", writer, jsonl=False, show_thinking=True, keep=False)
            streamer.run([_line({"response": "Paris", "done": False}), _line({"done": True})])
            writer.finish()
            assert pipe.writes == [b"Paris", b"\n"]  # written as it came: no waiting for more
    finally:
        os.close(read)


@pytest.mark.slow
def test_one_chunk_answers_under_xargs_never_share_a_line(fake_ollama: FakeOllama) -> None:
    """`xargs -P4` runs four at once into one pipe: every answer is a line of its own."""
    script = f'seq 40 | xargs -P4 -I{{}} "{sys.executable}" -m ostream generate -m multi "n{{}}"'
    result = subprocess.run(
        ["bash", "-c", script],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env_for(fake_ollama.url),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().split("\n")
    assert lines.pop() == ""
    assert sorted(lines) == sorted(f"echo: n{i}" for i in range(1, 41))

"""stdout and stderr that are closed, full or gone: the exit code says so, one line or
nothing on stderr, never a traceback."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ostream.output import Streams, Writer
from ostream.stream import Streamer
from ostream.testing import FakeOllama
from tests.proc import assert_quiet_stderr, closed_port, dead_pipe, env_for, run

# --- stdout or stderr closed at the start --------------------------------------------------


def test_a_closed_stdout_is_refused_before_the_request(fake_ollama: FakeOllama) -> None:
    result = run(["generate", "-m", "m", "hi"], fake_ollama.url, stdout=None, close_fd=1)
    assert result.returncode == 1
    assert result.stderr == b"ostream: error: cannot write to stdout: it is closed\n"
    assert fake_ollama.requests == []


def test_a_closed_stderr_keeps_the_exit_code() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = run(["generate", "-m", "m", "--retries", "0", "hi"], url, stderr=None, close_fd=2)
    assert result.returncode == 3


@pytest.mark.parametrize(
    ("how", "code", "stderr"),
    [
        ("closed-pipe", 141, b""),
        ("closed-fd", 1, b"ostream: error: cannot write to stdout: it is closed\n"),
    ],
)
def test_version_with_stdout_gone_exits_without_a_traceback(
    how: str, code: int, stderr: bytes
) -> None:
    url = "http://127.0.0.1:9"
    if how == "closed-pipe":
        write_end = dead_pipe()
        try:
            result = run(["--version"], url, stdout=write_end)
        finally:
            os.close(write_end)
    else:
        result = run(["--version"], url, stdout=None, close_fd=1)
    assert result.returncode == code
    assert result.stderr == stderr
    assert_quiet_stderr(result.stderr)


# --- stderr or stdout a pipe whose reader is gone -----------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "stdout"),
    [
        (["generate", "-m", "missing", "x"], 4, b""),
        (["generate", "-m", "m", "-v", "x"], 0, b"echo: x\n"),
        (["generate", "-m", "think", "x"], 0, b"echo: x\n"),
    ],
    ids=["error-message", "verbose", "thinking"],
)
def test_a_stderr_pipe_without_a_reader_loses_neither_the_exit_status_nor_the_answer(
    fake_ollama: FakeOllama, args: list[str], code: int, stdout: bytes
) -> None:
    stderr = dead_pipe()
    try:
        result = run(args, fake_ollama.url, stderr=stderr)
    finally:
        os.close(stderr)
    assert result.returncode == code
    assert result.stdout == stdout


@pytest.mark.parametrize("args", [["--help"], ["generate", "--help"], ["raw", "-h"]])
def test_help_into_a_pipe_without_a_reader_exits_141_quietly(args: list[str]) -> None:
    stdout = dead_pipe()
    try:
        result = run(args, "http://127.0.0.1:9", stdout=stdout)
    finally:
        os.close(stdout)
    assert result.returncode == 141
    assert result.stderr == b""


# --- stdout that cannot be written (a full disk) -------------------------------------------

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")


@needs_dev_full
@pytest.mark.parametrize(
    "args",
    [
        ["generate", "-m", "m", "a b c"],
        ["generate", "-m", "m", "--jsonl", "a b c"],
        ["raw", "-d", '{"model":"m","prompt":"a"}'],
        ["--version"],
        ["--help"],
        ["chat", "--help"],
    ],
)
def test_a_full_disk_is_one_line_and_exit_1(fake_ollama: FakeOllama, args: list[str]) -> None:
    with open("/dev/full", "wb") as full:
        result = run(args, fake_ollama.url, stdout=full)
    assert result.returncode == 1
    assert result.stderr == b"ostream: error: cannot write to stdout: No space left on device\n"


# --- the final newline in the same write as the last text --------------------


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


# --- stdout written unbuffered after the first flush ---------------------------------------


class RecordingBuffer(io.BufferedWriter):
    """A buffered stdout that records what goes through it."""

    def __init__(self, raw: io.FileIO) -> None:
        super().__init__(raw)
        self.writes: list[bytes] = []

    def write(self, data: Any) -> int:
        self.writes.append(bytes(data))
        return super().write(data)


@pytest.mark.parametrize(("process_fds", "through_buffer"), [(True, 1), (False, 3)])
def test_only_the_process_stdout_is_written_past_its_buffer(
    process_fds: bool, through_buffer: int
) -> None:
    """After the first flush the process's own fd 1 is written directly; a test's
    streams (not the process's) always go through the object they gave."""
    read, write = os.pipe()
    try:
        with RecordingBuffer(io.FileIO(write, "wb", closefd=False)) as stdout:
            writer = Writer(Streams(stdout, io.BytesIO(), process_fds=process_fds))
            for piece in ("a", "b", "c"):
                writer.text(piece)
            assert os.read(read, 10) == b"abc"
            assert len(stdout.writes) == through_buffer
    finally:
        os.close(read)
        os.close(write)


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_a_write_failing_after_the_first_flush_is_one_line_and_exit_1(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    """A file that stops growing mid-answer (EFBIG past RLIMIT_FSIZE; Python ignores
    SIGXFSZ): the direct writes fail as the buffered first one would."""
    args = ["generate", "-m", "burst", "-o", "fake_tokens=100000", "hi"]
    with open(tmp_path / "out", "wb") as out:
        result = run(args, fake_ollama.url, stdout=out, preexec_fn=_limit_file_size, timeout=60)
    assert result.returncode == 1
    assert result.stderr == b"ostream: error: cannot write to stdout: File too large\n"
    assert (tmp_path / "out").read_bytes().startswith(b"tok tok ")

"""stdout and stderr that are closed, full or gone: the exit code says so, one line or
nothing on stderr, never a traceback."""

from __future__ import annotations

import os

import pytest

from ostream.testing import FakeOllama
from tests.proc import assert_quiet_stderr, closed_port, dead_pipe, run

# --- stdout or stderr closed at the start --------------------------------------------------


def test_a_closed_stdout_is_a_usage_error_before_the_request(fake_ollama: FakeOllama) -> None:
    result = run(["generate", "-m", "m", "hi"], fake_ollama.url, stdout=None, close_fd=1)
    assert result.returncode == 2
    assert result.stderr == b"ostream: error: stdout is closed\n"
    assert fake_ollama.requests == []


def test_a_closed_stderr_keeps_the_exit_code() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = run(["generate", "-m", "m", "--retries", "0", "hi"], url, stderr=None, close_fd=2)
    assert result.returncode == 3


@pytest.mark.parametrize(
    ("how", "code", "stderr"),
    [("closed-pipe", 141, b""), ("closed-fd", 2, b"ostream: error: stdout is closed\n")],
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

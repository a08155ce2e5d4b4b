"""Regression tests for the second review: the man page's and README's claims, and the
edge cases behind them, checked against the program."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fake_ollama import FakeOllama, Reply, gen_chunks
from tests.proc import assert_quiet_stderr, env_for, run, spawn


def run_fds(
    args: list[str], env: dict[str, str], *, stdin: object = subprocess.DEVNULL, **fds: object
) -> subprocess.CompletedProcess[bytes]:
    """`python -m ostream args` with stdout/stderr given as fds or subprocess constants."""
    return subprocess.run(
        [sys.executable, "-m", "ostream", *args],
        stdin=stdin,
        stdout=fds.get("stdout", subprocess.PIPE),
        stderr=fds.get("stderr", subprocess.PIPE),
        env=env,
        timeout=10,
    )


def dead_pipe() -> int:
    """The write end of a pipe whose read end is already closed (writing gives EPIPE)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


# --- 1. NaN / Infinity / out-of-range numbers from files and -o: "unexpected", exit 1 ------


@pytest.mark.parametrize("option", ["--messages", "--history"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e400"])
def test_non_finite_number_in_a_conversation_file_is_a_usage_error(
    fake_ollama: FakeOllama, tmp_path: Path, option: str, value: str
) -> None:
    conversation = tmp_path / "talk.jsonl"
    conversation.write_text('{"role":"user","content":"x","n":' + value + "}\n")
    result = run(["chat", "-m", "m", option, str(conversation), "hi"], fake_ollama.url)
    assert result.returncode == 2, result.stderr
    assert b"unexpected" not in result.stderr
    assert fake_ollama.requests == []


@pytest.mark.parametrize(
    "args",
    [
        ["-o", "num_ctx=1e400"],
        ["--format", '{"type":"object","maximum":1e400}'],
    ],
    ids=["option", "format"],
)
def test_out_of_range_number_is_a_usage_error(fake_ollama: FakeOllama, args: list[str]) -> None:
    result = run(["generate", "-m", "m", *args, "hi"], fake_ollama.url)
    assert result.returncode == 2, result.stderr
    assert b"unexpected" not in result.stderr
    assert fake_ollama.requests == []


# --- 2. stderr a pipe whose reader is gone: exit 120, the answer aborted -------------------


@pytest.mark.parametrize(
    ("args", "code", "stdout"),
    [
        (["generate", "-m", "missing", "x"], 4, b""),
        (["generate", "-m", "m", "-v", "x"], 0, b"echo: x\n"),
        (["generate", "-m", "think", "x"], 0, b"echo: x\n"),
    ],
    ids=["error-message", "verbose", "thinking"],
)
def test_a_closed_stderr_pipe_loses_neither_the_exit_status_nor_the_answer(
    fake_ollama: FakeOllama, args: list[str], code: int, stdout: bytes
) -> None:
    stderr = dead_pipe()
    try:
        result = run_fds(args, env_for(fake_ollama.url), stderr=stderr)
    finally:
        os.close(stderr)
    assert result.returncode == code
    assert result.stdout == stdout


# --- 3. raw -X with a method that is not an HTTP token: "unexpected ValueError" ------------


@pytest.mark.parametrize("method", ["GE T", "GET\r", "GET\n"])
def test_raw_bad_method_is_a_usage_error(fake_ollama: FakeOllama, method: str) -> None:
    result = run(["raw", "-X", method, "/api/tags"], fake_ollama.url)
    assert result.returncode == 2, result.stderr
    assert b"unexpected" not in result.stderr
    assert fake_ollama.requests == []


# --- 4. a signal mid-stream: no final newline (man OUTPUT: "also when it ends in ... an
#        interruption") ------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_answer_in_a_file_ends_with_a_newline(
    fake_ollama: FakeOllama, tmp_path: Path, signum: int
) -> None:
    out = tmp_path / "answer.txt"
    with out.open("wb") as handle:
        proc = spawn(
            ["generate", "-m", "stall", "-o", "fake_tokens_before=2", "x"],
            fake_ollama.url,
            stdout=handle,
        )
        try:
            deadline = time.monotonic() + 10
            while out.read_bytes() != b"echo: x" and time.monotonic() < deadline:
                time.sleep(0.02)
            assert out.read_bytes() == b"echo: x"
            proc.send_signal(signum)
            assert proc.wait(timeout=5) == -signum  # ended by the signal itself
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    assert out.read_bytes() == b"echo: x\n"


# --- 5. --jsonl rewrites server lines whose text holds `", ` or `": ` -----------------------


@pytest.mark.parametrize("text", ['He said "hi", <b>then</b> & left', 'key": <v>'])
def test_jsonl_passes_a_compact_line_through_byte_for_byte(
    fake_ollama: FakeOllama, text: str
) -> None:
    fake_ollama.script(Reply(events=gen_chunks([text])))
    result = run(["generate", "-m", "m", "--jsonl", "x"], fake_ollama.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == fake_ollama.requests[-1].sent_bytes  # Go's \u003c escapes kept


# --- 6. --help into a closed pipe: exit 1 (click's EPIPE handling), not 141 ---------------


@pytest.mark.parametrize("args", [["--help"], ["generate", "--help"], ["raw", "-h"]])
def test_help_into_a_closed_pipe_exits_141_quietly(args: list[str]) -> None:
    stdout = dead_pipe()
    try:
        result = run_fds(args, env_for("http://127.0.0.1:9"), stdout=stdout)
    finally:
        os.close(stdout)
    assert result.returncode == 141
    assert_quiet_stderr(result.stderr)
    assert result.stderr == b""


# --- 7. raw -d - with stdin a terminal: "stdin is empty" -----------------------------------


def test_raw_data_dash_on_a_terminal_says_so(fake_ollama: FakeOllama) -> None:
    primary, secondary = pty.openpty()
    try:
        result = run_fds(["raw", "-d", "-"], env_for(fake_ollama.url), stdin=secondary)
    finally:
        os.close(secondary)
        os.close(primary)
    assert result.returncode == 2
    assert b"empty" not in result.stderr
    assert b"terminal" in result.stderr
    assert fake_ollama.requests == []

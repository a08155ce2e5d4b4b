"""Signals: SIGINT and SIGTERM end ostream at once with 130/143, the connection closed,
the output kept; the reader of stdout leaving is noticed."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from ostream.errors import Stop
from ostream.signals import WAKE, reader_watch
from ostream.testing import FakeOllama, Reply, Send, Stall, ndjson
from tests.proc import (
    LEAVE,
    closed_port,
    full_backlog,
    ignore_sigint,
    read_until,
    run_python,
    run_shell,
    spawn,
    wait_until_cancellable,
)

# --- SIGINT and SIGTERM: 130 and 143 at once, the connection closed, the output kept -------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_the_model_loads(fake_ollama: FakeOllama, signum: int, code: int) -> None:
    proc = spawn(["generate", "-m", "stall", "hi"], fake_ollama.url)
    request = fake_ollama.wait_for_request()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == code
    assert (out, err) == (b"", b"")
    assert request.left.wait(LEAVE)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_stream_keeps_output(fake_ollama: FakeOllama, signum: int, code: int) -> None:
    fake_ollama.script(
        Reply(events=[Send(ndjson({"response": "partial", "done": False})), Stall(30)])
    )
    proc = spawn(["generate", "-m", "m", "hi"], fake_ollama.url)
    assert proc.stdout is not None
    got = read_until(proc.stdout, lambda d: b"partial" in d)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == code
    assert got + out == b"partial"  # no newline added into a pipe after a signal (man: OUTPUT)
    assert err == b""
    assert fake_ollama.requests[-1].left.wait(LEAVE)


def test_signal_while_retrying_to_connect() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    proc = spawn(["generate", "-m", "m", "--retries", "10", "hi"], url)
    wait_until_cancellable(proc)
    threading.Event().wait(0.8)  # likely retrying by now; 130 whichever phase it is in
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert err == b""


def test_sigint_while_connecting() -> None:
    server, fillers = full_backlog()
    try:
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        proc = spawn(["generate", "-m", "m", "--retries", "0", "x"], url)
        wait_until_cancellable(proc)
        threading.Event().wait(0.7)  # likely connecting by now; 130 whichever phase it is in
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        for sock in [server, *fillers]:
            sock.close()
    assert proc.returncode == 130
    assert err == b""


def test_ignored_sigint_stays_ignored(fake_ollama: FakeOllama) -> None:
    proc = spawn(["generate", "-m", "stall", "hi"], fake_ollama.url, preexec_fn=ignore_sigint)
    request = fake_ollama.wait_for_request()
    proc.send_signal(signal.SIGINT)
    assert not request.left.wait(0.5)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert proc.returncode == 143
    assert request.left.wait(LEAVE)


def test_reader_watch_leaves_a_user_sigusr1_deadly(fake_ollama: FakeOllama) -> None:
    proc = spawn(["generate", "-m", "stall", "hi"], fake_ollama.url)
    request = fake_ollama.wait_for_request()
    proc.send_signal(signal.SIGUSR1)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGUSR1
    assert request.left.wait(LEAVE)


def test_ctrl_c_while_the_cli_is_still_importing_is_quiet() -> None:
    code = (
        "import builtins\n"
        "real = builtins.__import__\n"
        "def slow_to_import(name, *args, **kwargs):\n"
        "    if name == 'ostream.cli':\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = slow_to_import\n"
        "from ostream.__main__ import run\n"
        "run()\n"
    )
    result = run_python(code)
    assert result.returncode == 130
    assert result.stderr == b""


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_stdout_is_blocked_closes_the_connection_and_exits_at_once(
    fake_ollama: FakeOllama, signum: int, code: int
) -> None:
    big = ndjson({"response": "x" * 1_000_000, "done": False})
    fake_ollama.script(
        Reply(events=[Send(ndjson({"response": "a", "done": False})), Send(big), Stall(30)])
    )
    proc = spawn(["generate", "-m", "m", "hi"], fake_ollama.url)  # stdout: a pipe nobody reads
    try:
        request = fake_ollama.wait_for_request()
        deadline = time.monotonic() + 5
        while len(request.sent) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # ostream is now blocked writing the big line into the full pipe
        proc.send_signal(signum)
        assert request.left.wait(5), "the connection was not closed"
        assert proc.wait(timeout=5) == code
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_answer_in_a_file_ends_with_a_newline(
    fake_ollama: FakeOllama, tmp_path: Path, signum: int, code: int
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
            assert proc.wait(timeout=5) == code
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    assert out.read_bytes() == b"echo: x\n"


# --- the reader of stdout leaving: 141, silently, the connection closed -------------------


def test_broken_pipe_exits_141_silently_and_closes(fake_ollama: FakeOllama) -> None:
    proc = spawn(["generate", "-m", "burst", "-o", "fake_tokens=100000", "hi"], fake_ollama.url)
    assert proc.stdout is not None and proc.stderr is not None
    read_until(proc.stdout, lambda d: len(d) >= 100)
    proc.stdout.close()  # like `| head -c 100`
    err = proc.stderr.read()
    proc.wait(timeout=10)
    assert proc.returncode == 141
    assert err == b""
    assert fake_ollama.requests[-1].left.wait(LEAVE)


def test_broken_pipe_in_a_shell_pipeline(fake_ollama: FakeOllama) -> None:
    script = (
        'ostream generate -m burst -o fake_tokens=100000 hi | head -c 10; echo " ${PIPESTATUS[0]}"'
    )
    result = run_shell(script, fake_ollama.url)
    assert result.stdout == b"tok tok to 141\n"
    assert result.stderr == b""


@pytest.mark.parametrize(
    ("command", "before"),
    [("generate", 0), ("generate", 2), ("chat", 0), ("raw", 0), ("raw", 2)],
)
def test_reader_gone_while_waiting_closes_at_once(
    fake_ollama: FakeOllama, command: str, before: int
) -> None:
    """`| jq 'bad filter'` while the model loads (0 tokens) or stalls (2): no write
    would ever fail, yet the connection must close now and the exit be 141."""
    options = ["-o", "fake_stall=60", "-o", f"fake_tokens_before={before}"]
    if command == "raw":
        body = {"model": "stall", "prompt": "hi", "options": {"fake_tokens_before": before}}
        args = ["raw", "-d", json.dumps(body)]
    else:
        args = [command, "-m", "stall", *options, "hi"]
    proc = spawn(args, fake_ollama.url)
    assert proc.stdout is not None and proc.stderr is not None
    request = fake_ollama.wait_for_request()
    if before:
        read_until(proc.stdout, lambda d: d.count(b"\n" if command == "raw" else b" ") >= 1)
    proc.stdout.close()  # the reader exits without reading on
    assert request.left.wait(LEAVE)
    err = proc.stderr.read()
    proc.wait(timeout=10)
    assert proc.returncode == 141
    assert err == b""


@pytest.mark.parametrize("command", ["generate", "chat"])
def test_a_reader_done_after_the_whole_answer_leaves_exit_0(
    fake_ollama: FakeOllama, tmp_path: Path, command: str
) -> None:
    """`| head -c N` that takes the whole answer and leaves: the stream completed (0), and
    a chat turn is saved, however the reader's exit and ostream's clean-up interleave."""
    history = tmp_path / "talk.jsonl"
    extra = f"--history {history}" if command == "chat" else ""
    script = (
        f"for i in $(seq 20); do ostream {command} -m m {extra} hi there"
        ' | head -c 15 >/dev/null; echo "${PIPESTATUS[0]}"; done'
    )
    result = run_shell(script, fake_ollama.url, timeout=120)
    assert result.stdout.split() == [b"0"] * 20, result.stderr  # "echo: hi there\n": 15 bytes
    assert result.stderr == b""
    if command == "chat":
        assert len(history.read_text().splitlines()) == 40
        assert [p.name for p in tmp_path.iterdir()] == ["talk.jsonl"]  # no temp files left


# --- the watch on the reader of stdout -----------------------------------------------------


def test_the_reader_watch_cleans_up_whenever_the_reader_leaves() -> None:
    """The reader leaving at any moment, also during the watch's own clean-up, never
    leaks its pipe or leaves its SIGUSR1 handler installed."""
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    stops = 0
    for i in range(300):
        read_end, write_end = os.pipe()
        with os.fdopen(write_end, "wb") as stdout:
            try:
                with reader_watch(stdout):
                    os.close(read_end)
                    if i % 10 == 0:
                        time.sleep(2)  # cut short by the watch: Stop raised inside
                    for _ in range(i * 10):  # else leave it at a different moment each time
                        pass
            except Stop:
                stops += 1
        assert signal.getsignal(WAKE) is signal.SIG_DFL
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before
    assert stops >= 30  # at least each time it had the time to

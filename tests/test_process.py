"""Real processes: pipes, stdin, locale, latency, exit codes, timeouts (signals and the
reader of stdout leaving: test_signals.py)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import threading

import pytest

from ostream.testing import FakeOllama, Reply, Send, Wait, gen_chunks, ndjson
from tests.proc import (
    LEAVE,
    assert_quiet_stderr,
    closed_port,
    drain_pty,
    env_for,
    full_backlog,
    read_until,
    run,
    spawn,
)

# --- streaming and pipes -------------------------------------------------------------------


def test_each_token_reaches_a_pipe_before_the_next_is_sent(fake_ollama: FakeOllama) -> None:
    gates = [threading.Event() for _ in range(3)]
    events = []
    for i, gate in enumerate(gates):
        events += [Send(ndjson({"response": f"tok{i} ", "done": False})), Wait(gate, 10)]
    events.append(Send(ndjson({"response": "", "done": True})))
    fake_ollama.script(Reply(events=events))
    proc = spawn(["generate", "-m", "m", "hi"], fake_ollama.url)
    assert proc.stdout is not None
    seen = b""
    for i, gate in enumerate(gates):
        seen += read_until(proc.stdout, lambda d, i=i: f"tok{i} ".encode() in d)
        gate.set()
    out, err = proc.communicate(timeout=10)
    assert seen + out == b"tok0 tok1 tok2 \n"
    assert proc.returncode == 0
    assert err == b""


def test_jsonl_lines_reach_a_pipe_one_by_one(fake_ollama: FakeOllama) -> None:
    gate = threading.Event()
    first = ndjson({"response": "a", "done": False})
    fake_ollama.script(
        Reply(events=[Send(first), Wait(gate, 10), Send(ndjson({"response": "", "done": True}))])
    )
    proc = spawn(["generate", "-m", "m", "--jsonl", "hi"], fake_ollama.url)
    assert proc.stdout is not None
    assert read_until(proc.stdout, lambda d: d.endswith(b"\n")) == first
    gate.set()
    proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_piped_stdin_then_words(fake_ollama: FakeOllama) -> None:
    result = run(
        ["generate", "-m", "m", "Write a commit message"],
        fake_ollama.url,
        input=b"diff --git a/f b/f\n+x\n",
    )
    assert result.returncode == 0
    assert fake_ollama.requests[-1].json["prompt"] == (
        "diff --git a/f b/f\n+x\n\nWrite a commit message"
    )
    assert result.stdout.startswith(b"echo: diff --git")


def test_no_prompt_with_empty_stdin_is_exit_2(fake_ollama: FakeOllama) -> None:
    result = run(["generate", "-m", "m"], fake_ollama.url, input=b"")
    assert result.returncode == 2
    assert result.stderr.startswith(b"ostream: error: no prompt")
    assert fake_ollama.requests == []


def test_non_utf8_stdin_is_exit_2(fake_ollama: FakeOllama) -> None:
    result = run(["generate", "-m", "m", "x"], fake_ollama.url, input=b"\xff\xfe bad")
    assert result.returncode == 2
    assert b"not valid UTF-8" in result.stderr
    assert fake_ollama.requests == []


@pytest.mark.parametrize("locale", ["C", "POSIX"])
def test_output_is_utf8_whatever_the_locale(fake_ollama: FakeOllama, locale: str) -> None:
    env = env_for(fake_ollama.url, LC_ALL=locale, LANG=locale)
    result = run(["generate", "-m", "split-utf8", "x"], fake_ollama.url, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "héllo wörld ✓ 🎉\n".encode()


def test_utf8_prompt_under_c_locale(fake_ollama: FakeOllama) -> None:
    env = env_for(fake_ollama.url, LC_ALL="C")
    result = run(["generate", "-m", "m", "héllo ✓"], fake_ollama.url, env=env)
    assert result.returncode == 0
    assert fake_ollama.requests[-1].json["prompt"] == "héllo ✓"
    assert result.stdout == "echo: héllo ✓\n".encode()


@pytest.mark.parametrize("model", ["close", "multi", "done-text"])
def test_framings_give_the_whole_answer(fake_ollama: FakeOllama, model: str) -> None:
    result = run(["generate", "-m", model, "one two three"], fake_ollama.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"echo: one two three\n"


@pytest.mark.slow
def test_a_50_mb_line(fake_ollama: FakeOllama) -> None:
    result = run(
        ["generate", "-m", "huge", "-o", "fake_size=50000000", "x"], fake_ollama.url, timeout=60
    )
    assert result.returncode == 0, result.stderr[-300:]
    assert len(result.stdout) == 50_000_001
    assert result.stdout.strip(b"x") == b"\n"


def test_thinking_to_stderr_in_a_pipe(fake_ollama: FakeOllama) -> None:
    result = run(["generate", "-m", "think", "q"], fake_ollama.url)
    assert result.returncode == 0
    assert result.stdout == b"echo: q\n"
    assert b"think" in result.stderr.lower()
    assert b"\x1b" not in result.stderr  # no colour when stderr is not a terminal


def test_control_characters_pass_unchanged_into_a_pipe(fake_ollama: FakeOllama) -> None:
    result = run(["generate", "-m", "control", "x"], fake_ollama.url)
    assert result.returncode == 0, result.stderr
    assert b"\x1b]0;pwned\x07" in result.stdout
    assert b"\x1b[2J" in result.stdout


def test_control_characters_are_visible_on_a_terminal(fake_ollama: FakeOllama) -> None:
    master, slave = pty.openpty()
    proc = spawn(["generate", "-m", "control", "x"], fake_ollama.url, stdout=slave)
    os.close(slave)
    shown = drain_pty(master)
    proc.wait(timeout=10)
    assert proc.returncode == 0
    assert b"\x1b" not in shown
    assert b"\x07" not in shown
    assert b"\xc2\x9b" not in shown
    assert b"^[]0;pwned^G" in shown
    assert b"^[[2J" in shown


def test_an_error_after_an_unfinished_line_starts_its_own_line_on_a_terminal(
    fake_ollama: FakeOllama,
) -> None:
    from ostream.testing import text_reply

    fake_ollama.script(text_reply(500, "oops"), path="/api/tags")
    master, slave = pty.openpty()
    proc = spawn(
        ["raw", "/api/tags"],
        fake_ollama.url,
        stdout=slave,
        stderr=slave,
        env=env_for(fake_ollama.url, NO_COLOR="1"),
    )
    os.close(slave)
    shown = drain_pty(master)
    proc.wait(timeout=10)
    assert proc.returncode == 1
    assert shown.startswith(b"oops\r\nostream: error: HTTP 500")


@pytest.mark.parametrize(("term", "escapes"), [("dumb", False), ("xterm", True)])
def test_an_error_on_a_dumb_terminal_has_no_escape_sequences(
    fake_ollama: FakeOllama, term: str, escapes: bool
) -> None:
    primary, secondary = pty.openpty()
    proc = spawn(
        ["generate", "-m", "missing", "hi"],
        fake_ollama.url,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
        env=env_for(fake_ollama.url, TERM=term),
    )
    os.close(secondary)
    shown = drain_pty(primary)
    assert proc.wait(timeout=30) == 4
    assert shown.startswith((b"\x1b[1;31m" if escapes else b"") + b"ostream: error:")
    assert (b"\x1b" in shown) is escapes


# --- exit codes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "code", "message"),
    [
        ("m", 0, None),
        ("missing", 4, "model 'missing' not found; try: ollama pull missing"),
        ("old-missing", 4, "model 'old-missing' not found"),
        ("boom", 1, "llama runner process has terminated (HTTP 500"),
        ("html", 1, "502 Bad Gateway"),
        ("error-mid", 1, "an error was encountered while running the model"),
        ("truncated", 5, "stream ended before the model finished"),
        ("drop", 5, "broke mid-stream"),
        ("notjson", 5, "not JSON: 'this is not json'"),
        ("busy", 1, "server busy"),
    ],
)
def test_exit_codes(fake_ollama: FakeOllama, model: str, code: int, message: str | None) -> None:
    result = run(["generate", "-m", model, "--retries", "0", "hello"], fake_ollama.url)
    assert result.returncode == code, result.stderr
    assert_quiet_stderr(result.stderr)
    if message is None:
        assert result.stderr == b""
    else:
        assert result.stderr.startswith(b"ostream: error: ")
        assert result.stderr.count(b"\n") == 1
        assert message.encode() in result.stderr


@pytest.mark.parametrize(
    ("model", "stream", "code", "message"),
    [
        ("m", True, 0, None),
        ("m", False, 0, None),
        ("truncated", True, 5, "stream ended before the model finished"),
        ("drop", True, 5, "broke mid-stream"),
        ("error-mid", True, 1, "an error was encountered while running the model"),
        ("missing", True, 4, "model 'missing' not found"),
        ("notjson", True, 5, "not JSON: 'this is not json'"),
    ],
)
def test_raw_exit_codes(
    fake_ollama: FakeOllama, model: str, stream: bool, code: int, message: str | None
) -> None:
    body = json.dumps({"model": model, "prompt": "a b", "stream": stream}).encode()
    result = run(["raw", "--retries", "0"], fake_ollama.url, input=body)
    assert result.returncode == code, result.stderr
    assert result.stdout == fake_ollama.requests[-1].sent_bytes  # copied whatever the outcome
    if message is None:
        assert result.stderr == b""
    else:
        assert result.stderr.startswith(b"ostream: error: ")
        assert result.stderr.count(b"\n") == 1
        assert message.encode() in result.stderr


def test_partial_output_is_kept_on_a_mid_stream_error(fake_ollama: FakeOllama) -> None:
    result = run(["generate", "-m", "error-mid", "a b c d e f"], fake_ollama.url)
    assert result.returncode == 1
    assert result.stdout.startswith(b"echo:")
    assert result.stdout.endswith(b"\n")


def test_cannot_connect_names_the_url_exit_3() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = run(["generate", "-m", "m", "--retries", "0", "hi"], url)
    assert result.returncode == 3
    assert (
        result.stderr
        == f"ostream: error: cannot connect to {url}: connection refused;"
        " is `ollama serve` running? (--host, OLLAMA_HOST)\n".encode()
    )


def test_unknown_host_exit_3() -> None:
    result = run(
        ["generate", "-m", "m", "--retries", "0", "--host", "nonexistent.invalid", "x"], ""
    )
    assert result.returncode == 3
    assert b"cannot connect to http://nonexistent.invalid:11434" in result.stderr
    assert_quiet_stderr(result.stderr)


def test_busy_server_is_retried_before_output(fake_ollama: FakeOllama) -> None:
    result = run(["generate", "-m", "busy-once", "hi"], fake_ollama.url)
    assert result.returncode == 0
    assert result.stdout == b"echo: hi\n"
    assert len(fake_ollama.requests) == 2


def test_timeout_waiting_for_the_first_token(fake_ollama: FakeOllama) -> None:
    result = run(["generate", "-m", "stall", "--timeout", "0.5", "hi"], fake_ollama.url)
    assert result.returncode == 124
    assert b"first token" in result.stderr
    assert result.stderr.count(b"\n") == 1
    assert fake_ollama.requests[-1].left.wait(LEAVE)


def test_timeout_between_tokens_keeps_output(fake_ollama: FakeOllama) -> None:
    result = run(
        ["generate", "-m", "stall", "-o", "fake_tokens_before=2", "--timeout", "0.5", "hi"],
        fake_ollama.url,
    )
    assert result.returncode == 124
    assert b"between tokens" in result.stderr
    assert result.stdout.startswith(b"echo:")
    assert fake_ollama.requests[-1].left.wait(LEAVE)


def test_no_read_timeout_by_default(fake_ollama: FakeOllama) -> None:
    gate = threading.Event()
    fake_ollama.script(Reply(events=[Wait(gate, 20), *gen_chunks(["late"])]))
    proc = spawn(["generate", "-m", "m", "hi"], fake_ollama.url)
    fake_ollama.wait_for_request()
    try:
        proc.wait(timeout=2)
        pytest.fail("ostream gave up on a slow first token")
    except subprocess.TimeoutExpired:
        pass
    gate.set()
    out, _ = proc.communicate(timeout=10)
    assert (proc.returncode, out) == (0, b"late\n")


def test_timeout_while_connecting() -> None:
    server, fillers = full_backlog()
    try:
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        result = run(["generate", "-m", "m", "--retries", "0", "--timeout", "0.5", "x"], url)
    finally:
        for sock in [server, *fillers]:
            sock.close()
    assert result.returncode == 124
    assert result.stderr == f"ostream: error: timed out after 0.5s connecting to {url}\n".encode()


def test_debug_variable_shows_the_traceback(fake_ollama: FakeOllama) -> None:
    env = env_for(fake_ollama.url, OSTREAM_DEBUG="1")
    result = run(["generate", "-m", "missing", "x"], fake_ollama.url, env=env)
    assert result.returncode == 1  # raised, so Python's exit status for an uncaught exception
    assert b"Traceback" in result.stderr
    assert result.stderr.endswith(
        b"ModelNotFound: model 'missing' not found; try: ollama pull missing\n"
    )

"""Regression tests for the findings of the first review: edge cases a Unix user hits."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from importlib.metadata import requires
from pathlib import Path
from typing import Any

import pytest

from tests.fake_ollama import FakeOllama, Reply, Send, Stall, ndjson, text_reply
from tests.proc import ROOT, assert_quiet_stderr, env_for, run, spawn


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_with(
    args: list[str],
    env: dict[str, str],
    *,
    close_fd: int | None = None,
    stdin: Any = subprocess.DEVNULL,
    stdout: Any = subprocess.PIPE,
    stderr: Any = subprocess.PIPE,
) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m ostream args`, optionally with fd `close_fd` closed in the child."""

    def preexec() -> None:
        if close_fd is not None:
            os.close(close_fd)

    return subprocess.run(
        [sys.executable, "-m", "ostream", *args],
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=env,
        preexec_fn=preexec,
        timeout=10,
    )


def strict_json(data: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(data, parse_constant=refuse)


# --- 1. the API key leaks into an error message --------------------------------------------


def test_api_key_with_a_newline_is_never_printed(fake_ollama: FakeOllama) -> None:
    env = env_for(fake_ollama.url, OLLAMA_API_KEY="sekrit-key-123\n")
    result = run(["generate", "-m", "m", "hi"], fake_ollama.url, env=env)
    assert b"sekrit-key-123" not in result.stderr + result.stdout
    assert b"unexpected" not in result.stderr
    assert result.returncode == 0  # the trailing newline is trimmed
    assert fake_ollama.requests[-1].headers["authorization"] == "Bearer sekrit-key-123"


@pytest.mark.parametrize(
    "key", ["sekrit key", "sekrit\nX-Injected: 1", "sekrit\x01", "sekrit-kl\u00fcssel"]
)
def test_api_key_that_cannot_be_a_header_is_refused_unprinted(
    fake_ollama: FakeOllama, key: str
) -> None:
    env = env_for(fake_ollama.url, OLLAMA_API_KEY=key)
    result = run(["raw", "/api/tags"], fake_ollama.url, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith(b"ostream: error: OLLAMA_API_KEY ")
    assert result.stderr.count(b"\n") == 1
    assert b"sekrit" not in result.stderr + result.stdout
    assert fake_ollama.requests == []


# --- 2. a signal while stdout is blocked: connection stays open, process hangs ------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_with_stdout_blocked_closes_at_once(fake_ollama: FakeOllama, signum: int) -> None:
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
        assert proc.wait(timeout=5) == -signum  # ended by the signal itself
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


# --- 3. proxies: loopback goes through http_proxy ------------------------------------------


def test_loopback_server_is_not_sent_through_the_proxy(fake_ollama: FakeOllama) -> None:
    proxy = f"http://127.0.0.1:{closed_port()}"
    env = env_for(fake_ollama.url, http_proxy=proxy, HTTP_PROXY=proxy)
    for key in ("no_proxy", "NO_PROXY"):
        env.pop(key, None)
    result = run(["generate", "-m", "m", "--retries", "0", "hi"], fake_ollama.url, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"echo: hi\n"


# --- 4. --messages - with nothing on stdin -------------------------------------------------


def test_messages_from_empty_stdin_without_words_is_a_usage_error(
    fake_ollama: FakeOllama,
) -> None:
    result = run(["chat", "-m", "m", "--messages", "-"], fake_ollama.url, input=b"")
    assert result.returncode == 2
    assert fake_ollama.requests == []


def test_messages_from_closed_stdin_is_a_usage_error(fake_ollama: FakeOllama) -> None:
    result = run_with(
        ["chat", "-m", "m", "--messages", "-", "hi"], env_for(fake_ollama.url), close_fd=0
    )
    assert result.returncode == 2
    assert fake_ollama.requests == []


# --- 5. --history through a symlink --------------------------------------------------------


def test_history_symlink_is_followed(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    real.write_bytes(b'{"role":"user","content":"a"}\n{"role":"assistant","content":"b"}\n')
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    result = run(["chat", "-m", "m", "--history", str(link), "hi"], fake_ollama.url)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    assert len(real.read_bytes().splitlines()) == 4


# --- 6. text before a non-JSON line in the same read is lost --------------------------------


def test_text_before_a_bad_line_in_the_same_read_is_written(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(Reply(events=[Send(b'{"response":"hello","done":false}\nnot json\n')]))
    result = run(["generate", "-m", "m", "x"], fake_ollama.url)
    assert result.returncode == 5
    assert result.stdout == b"hello\n"


# --- 7. raw: error bodies are truncated at 1 MiB ---------------------------------------------


def test_raw_copies_a_big_error_body_whole(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(text_reply(500, "e" * 3_000_000))
    result = run(["raw", "-d", "{}"], fake_ollama.url)
    assert result.returncode == 1
    assert len(result.stdout) == 3_000_000


# --- 8. NaN / Infinity are sent as if they were JSON --------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["raw", "-d", '{"model":"m","prompt":"x","options":{"temperature":NaN}}'],
        ["generate", "-m", "m", "--keep-alive", "inf", "x"],
        ["generate", "-m", "m", "-o", "temperature=NaN", "x"],
    ],
    ids=["raw-NaN", "keep-alive-inf", "option-NaN"],
)
def test_nothing_that_is_not_json_is_sent(fake_ollama: FakeOllama, args: list[str]) -> None:
    result = run(args, fake_ollama.url)
    if not fake_ollama.requests:
        assert result.returncode == 2
    for request in fake_ollama.requests:
        strict_json(request.body)


# --- 9. argv that is not UTF-8 ------------------------------------------------------------


def test_non_utf8_argument_is_a_usage_error(fake_ollama: FakeOllama) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ostream", "generate", "-m", "m", b"caf\xe9"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env_for(fake_ollama.url),
        timeout=10,
    )
    assert result.returncode == 2
    assert b"unexpected" not in result.stderr
    assert fake_ollama.requests == []


# --- 10. stdout / stderr closed at start ----------------------------------------------------


def test_closed_stdout_is_refused_before_the_request(fake_ollama: FakeOllama) -> None:
    result = run_with(
        ["generate", "-m", "m", "hi"], env_for(fake_ollama.url), stdout=None, close_fd=1
    )
    assert result.returncode != 0
    assert b"unexpected" not in result.stderr
    assert fake_ollama.requests == []


def test_closed_stderr_keeps_the_exit_code() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = run_with(
        ["generate", "-m", "m", "--retries", "0", "hi"], env_for(url), stderr=None, close_fd=2
    )
    assert result.returncode == 3


@pytest.mark.parametrize("how", ["closed-pipe", "closed-fd"])
def test_version_with_stdout_gone_is_quiet(how: str) -> None:
    env = env_for("http://127.0.0.1:9")
    if how == "closed-pipe":
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            result = run_with(["--version"], env, stdout=write_end)
        finally:
            os.close(write_end)
        assert result.returncode == 141
    else:
        result = run_with(["--version"], env, stdout=None, close_fd=1)
    assert_quiet_stderr(result.stderr)


# --- 11. --timeout inf / nan ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_timeout_inf_or_nan_is_not_an_unexpected_error(fake_ollama: FakeOllama, value: str) -> None:
    result = run(["generate", "-m", "m", "--timeout", value, "x"], fake_ollama.url)
    assert result.returncode in (0, 2), result.stderr
    assert b"unexpected" not in result.stderr


# --- 12. --jsonl passes non-compact server lines through ---------------------------------


def test_jsonl_lines_are_compact(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(
        Reply(
            events=[
                Send(b'{"response": "a", "done": false}\n'),
                Send(b'{"response": "", "done": true}  \n'),
            ]
        )
    )
    result = run(["generate", "-m", "m", "--jsonl", "x"], fake_ollama.url)
    assert result.returncode == 0
    assert result.stdout == b'{"response":"a","done":false}\n{"response":"","done":true}\n'


# --- 13. raw: a redirect turns POST into GET and drops the body ------------------------------


def test_raw_keeps_method_and_body_across_a_redirect(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(
        Reply(
            status=301,
            headers={"Location": fake_ollama.url + "/api/elsewhere"},
            events=[],
            content_length=True,
        )
    )
    run(["raw", "-d", '{"a":1}'], fake_ollama.url)
    assert fake_ollama.requests
    assert all(r.method == "POST" and r.body == b'{"a":1}' for r in fake_ollama.requests)


# --- 14. packaging: urllib3 1.x has no HTTPResponse.read1 ----------------------------------


def test_dependencies_require_urllib3_2() -> None:
    pins = [r for r in requires("ostream") or [] if re.match(r"urllib3\b", r) and ";" not in r]
    assert pins, f"no urllib3 requirement in {requires('ostream')} ({ROOT}/pyproject.toml)"
    assert any(re.search(r">=\s*2", pin) for pin in pins)

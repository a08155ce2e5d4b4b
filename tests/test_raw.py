"""raw: the request body it sends and how the answer reaches a terminal or a pipe."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from ostream.cli import main
from ostream.terminal import visible_bytes
from tests.fake_ollama import FakeOllama, Reply, Send, text_reply
from tests.proc import drain_pty, env_for, run
from tests.test_environment import environment, err, out

ESCAPES = "before \x1b]0;title\x07 \x1b[2J after \x9b31m end\n"


# --------------------------------------------------------------------------- terminals


def test_a_text_error_body_cannot_drive_a_terminal(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(text_reply(500, ESCAPES), path="/api/tags")
    env = environment(fake_ollama.url, stdout_tty=True)
    assert main(["raw", "/api/tags"], env=env) == 1
    assert out(env) == b"before ^[]0;title^G ^[[2J after <U+009B>31m end\n"
    assert b"\x1b" not in err(env)


def test_a_json_labelled_body_that_is_not_json_is_made_safe_too(fake_ollama: FakeOllama) -> None:
    reply = Reply(200, "application/json", [Send(b"\x1b[2J{oops\n")], content_length=True)
    fake_ollama.script(reply, path="/api/tags")
    env = environment(fake_ollama.url, stdout_tty=True)
    assert main(["raw", "/api/tags"], env=env) == 0
    assert out(env) == b"^[[2J{oops\n"


def test_json_lines_reach_a_terminal_unchanged(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url, stdout_tty=True)
    assert main(["raw", "-d", '{"model":"control","prompt":"x"}'], env=env) == 0
    shown = out(env)
    assert b"\\u001b]0;pwned\\u0007" in shown  # escaped by JSON: nothing to change
    env = environment(fake_ollama.url)
    assert main(["raw", "-d", '{"model":"control","prompt":"x"}'], env=env) == 0
    assert out(env).count(b"\n") == shown.count(b"\n")


def test_off_a_terminal_the_body_passes_byte_for_byte(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(text_reply(500, ESCAPES), path="/api/tags")
    env = environment(fake_ollama.url)
    assert main(["raw", "/api/tags"], env=env) == 1
    assert out(env) == ESCAPES.encode()


def test_crlf_line_ends_stay_and_a_lone_cr_is_shown() -> None:
    assert visible_bytes(b"<p>\r\nok\r\n") == b"<p>\r\nok\r\n"
    assert visible_bytes(b"fake\rreal\n") == b"fake^Mreal\n"
    assert visible_bytes(b"caf\xe9 \x9b") == "caf\ufffd \ufffd".encode()


def test_a_text_body_on_a_real_terminal_is_shown_safely(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(text_reply(500, ESCAPES), path="/api/tags")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ostream", "raw", "/api/tags"],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env_for(fake_ollama.url),
    )
    os.close(slave)
    shown = drain_pty(master)
    assert proc.wait(timeout=30) == 1
    assert b"\x1b" not in shown and b"\x07" not in shown
    assert b"before ^[]0;title^G ^[[2J after" in shown


def test_a_text_body_into_a_pipe_is_byte_for_byte(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(text_reply(500, ESCAPES), path="/api/tags")
    result = run(["raw", "/api/tags"], fake_ollama.url)
    assert result.returncode == 1
    assert result.stdout == ESCAPES.encode()


# --------------------------------------------------------------------------- bodies and hints


def test_a_body_taken_from_stdin_that_is_not_json_says_where_it_came_from(
    fake_ollama: FakeOllama,
) -> None:
    env = environment(fake_ollama.url, stdin=b"line from a while-read loop\n")
    assert main(["raw"], env=env) == 2
    message = err(env).decode()
    assert "not valid JSON" in message
    assert "read from stdin, which is not a terminal: give -d, or </dev/null" in message
    assert fake_ollama.requests == []


def test_a_body_given_with_d_that_is_not_json_has_no_stdin_hint(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url, stdin=b"nope")
    assert main(["raw", "-d", "-"], env=env) == 2
    assert b"not valid JSON" in err(env)
    assert b"stdin, which" not in err(env)


def test_bare_raw_on_a_terminal_hints_at_d(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url, stdin=b"", stdin_tty=True)
    assert main(["raw"], env=env) == 1
    assert fake_ollama.requests[-1].method == "GET"
    assert out(env) == b"405 method not allowed"
    assert b"HTTP 405" in err(env)
    assert b"no body was given, so this was a GET: give -d JSON" in err(env)


def test_raws_missing_model_carries_the_pull_hint(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url)
    assert main(["raw", "-d", '{"model":"missing","prompt":"x"}'], env=env) == 4
    assert err(env) == b"ostream: error: model 'missing' not found; try: ollama pull missing\n"
    assert b"not found" in out(env)  # the body itself still goes to stdout


def test_an_explicit_get_refused_with_405_has_no_hint(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url, stdin_tty=True)
    assert main(["raw", "-X", "GET"], env=env) == 1
    assert b"HTTP 405" in err(env) and b"-d" not in err(env)

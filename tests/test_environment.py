"""A whole command run in-process with an Environment of the test's making: terminal
behaviour, colour, stdin and environment variables without a pty or a subprocess.
(tests/test_process.py checks the same on real terminals and pipes.)"""

from __future__ import annotations

import io
import sys

import pytest

from ostream.cli import main
from ostream.environment import Environment
from ostream.testing import CONTROL_TEXT, ECHO_PREFIX, THINK_TEXT, FakeOllama, text_reply
from tests.inproc import environment, err, out

RED_ERROR = b"\x1b[1;31mostream: error:\x1b[0m "


@pytest.fixture(autouse=True)
def _no_process_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the command sees must come from the Environment, not from os.environ."""
    for name in ("OLLAMA_HOST", "OLLAMA_API_KEY", "OSTREAM_MODEL", "NO_COLOR", "OSTREAM_DEBUG"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- terminals


def test_control_characters_are_made_visible_when_stdout_is_a_terminal(
    fake_ollama: FakeOllama,
) -> None:
    env = environment(fake_ollama.url, stdout_tty=True)
    assert main(["generate", "-m", "control", "x"], env=env) == 0
    assert b"\x1b" not in out(env)
    assert b"^[]0;pwned^G" in out(env)
    assert b"^[[2J" in out(env)
    assert b"<U+009B>31m" in out(env)


def test_control_characters_pass_unchanged_when_stdout_is_not_a_terminal(
    fake_ollama: FakeOllama,
) -> None:
    env = environment(fake_ollama.url)
    assert main(["generate", "-m", "control", "x"], env=env) == 0
    assert out(env) == CONTROL_TEXT.encode() + b"\n"


def test_an_error_message_is_red_when_colour_is_on(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url, stderr_tty=True, color=True)
    assert main(["generate", "-m", "missing", "x"], env=env) == 4
    assert err(env).startswith(RED_ERROR + b"model 'missing' not found")


def test_an_error_message_is_plain_without_colour(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url, stderr_tty=True, color=False)
    assert main(["generate", "-m", "missing", "x"], env=env) == 4
    assert err(env).startswith(b"ostream: error: model 'missing' not found")


def test_thinking_is_dimmed_on_a_colour_terminal_and_plain_otherwise(
    fake_ollama: FakeOllama,
) -> None:
    env = environment(fake_ollama.url, stderr_tty=True, color=True)
    assert main(["generate", "-m", "think", "x"], env=env) == 0
    assert err(env).startswith(b"\x1b[2mLet\x1b[0m")
    assert err(env).replace(b"\x1b[2m", b"").replace(b"\x1b[0m", b"") == b"Let me think.\n"
    env = environment(fake_ollama.url)
    assert main(["generate", "-m", "think", "x"], env=env) == 0
    assert err(env) == THINK_TEXT.encode() + b"\n"


def test_an_error_after_an_unfinished_line_starts_on_its_own_line_on_a_terminal(
    fake_ollama: FakeOllama,
) -> None:
    fake_ollama.script(text_reply(500, "oops"), path="/api/tags")
    env = environment(fake_ollama.url, stdout_tty=True, stderr_tty=True)
    assert main(["raw", "/api/tags"], env=env) == 1
    assert out(env) == b"oops"  # byte for byte: the line break goes to stderr
    assert err(env).startswith(b"\nostream: error: HTTP 500")


def test_off_a_terminal_an_error_does_not_add_a_line_break(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(text_reply(500, "oops"), path="/api/tags")
    env = environment(fake_ollama.url)
    assert main(["raw", "/api/tags"], env=env) == 1
    assert err(env).startswith(b"ostream: error: HTTP 500")


# --------------------------------------------------------------------------- stdin


def test_piped_stdin_comes_first_in_the_prompt(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url, stdin=b"piped\n")
    assert main(["generate", "-m", "m", "words"], env=env) == 0
    assert fake_ollama.requests[-1].json["prompt"] == "piped\n\nwords"
    assert out(env) == f"{ECHO_PREFIX}piped\n\nwords\n".encode()


def test_stdin_on_a_terminal_is_not_read(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url, stdin=b"never read", stdin_tty=True)
    assert main(["generate", "-m", "m"], env=env) == 2
    assert err(env) == b"ostream: error: no prompt: give PROMPT words or pipe text on stdin\n"
    assert env.stdin.read() == b"never read"


def test_raw_takes_its_body_from_piped_stdin(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url, stdin=b'{"model": "m", "prompt": "hi"}')
    assert main(["raw"], env=env) == 0
    assert fake_ollama.requests[-1].json == {"model": "m", "prompt": "hi"}


# --------------------------------------------------------------------------- variables


def test_the_server_model_and_key_come_from_the_environment_variables(
    fake_ollama: FakeOllama,
) -> None:
    environ = {"OLLAMA_HOST": fake_ollama.url, "OSTREAM_MODEL": "m", "OLLAMA_API_KEY": "k3y"}
    env = environment(fake_ollama.url, environ=environ)
    assert main(["generate", "hi"], env=env) == 0
    request = fake_ollama.requests[-1]
    assert request.json["model"] == "m"
    assert request.headers["authorization"] == "Bearer k3y"


def test_without_a_model_variable_there_is_no_model(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url)
    assert main(["generate", "hi"], env=env) == 2
    assert err(env) == b"ostream: error: no model: pass -m NAME or set OSTREAM_MODEL\n"


def test_debug_variable_re_raises_for_the_traceback(fake_ollama: FakeOllama) -> None:
    from ostream.errors import ModelNotFound

    environ = {"OLLAMA_HOST": fake_ollama.url, "OSTREAM_DEBUG": "1"}
    env = environment(fake_ollama.url, environ=environ)
    with pytest.raises(ModelNotFound):
        main(["generate", "-m", "missing", "x"], env=env)


# --------------------------------------------------------------------------- the process's own


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("no_color", "colour"), [(None, True), ("", False), ("1", False)])
def test_the_process_environment_colours_a_terminal_stderr_unless_no_color(
    monkeypatch: pytest.MonkeyPatch, no_color: str | None, colour: bool
) -> None:
    monkeypatch.setattr(sys, "stderr", FakeTerminal())
    if no_color is not None:
        monkeypatch.setenv("NO_COLOR", no_color)
    env = Environment.from_process()
    assert env.stderr_tty
    assert env.color is colour


@pytest.mark.parametrize(("term", "colour"), [("dumb", False), ("xterm", True), (None, True)])
def test_a_dumb_terminal_gets_no_colour(
    monkeypatch: pytest.MonkeyPatch, term: str | None, colour: bool
) -> None:
    monkeypatch.setattr(sys, "stderr", FakeTerminal())
    monkeypatch.delenv("NO_COLOR", raising=False)
    if term is None:
        monkeypatch.delenv("TERM", raising=False)
    else:
        monkeypatch.setenv("TERM", term)
    assert Environment.from_process().color is colour


def test_the_process_environment_is_looked_up_when_a_command_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OSTREAM_MODEL", "late")
    env = Environment.from_process()
    assert env.environ["OSTREAM_MODEL"] == "late"
    assert env.process_fds

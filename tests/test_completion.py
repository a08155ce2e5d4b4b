"""Shell completion through Typer, for bash, zsh and fish, as the shells call it; the
values offered for --think and -m/--model."""

from __future__ import annotations

import json
import shlex
import socket
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ostream.cli import app
from ostream.testing import (
    Event,
    FakeOllama,
    Reply,
    Send,
    Sleep,
    Wait,
    json_reply,
    text_reply,
)
from tests.proc import env_for, run


def complete(shell: str, words: str, **extra: str) -> str:
    env = env_for("", _OSTREAM_COMPLETE=f"complete_{shell}", **extra)
    if shell == "bash":
        env.update(COMP_WORDS=words, COMP_CWORD=str(len(words.split()) - 1))
    else:
        env.update(_TYPER_COMPLETE_ARGS=words)
        if shell == "fish":
            env.update(_TYPER_COMPLETE_FISH_ACTION="get-args")
    result = run([], "", env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_commands_and_options_complete(shell: str) -> None:
    assert "generate" in complete(shell, "ostream gen")
    assert "--hide-thinking" in complete(shell, "ostream chat --hi")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_a_script(shell: str) -> None:
    result = run(["--show-completion", shell], "")
    assert result.returncode == 0
    assert b"_OSTREAM_COMPLETE" in result.stdout


# --- values: --think's words, -m's models from the server (in-process, as bash asks) -------


def offered(words: str, **env: str | None) -> list[str]:
    """What Tab offers for the command line `words` (a trailing space: a new empty word),
    through Click's completion machinery in-process, as the bash script asks for it."""
    cword = len(shlex.split(words)) - (0 if words.endswith(" ") else 1)
    base: dict[str, str | None] = {
        "_OSTREAM_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
        "OLLAMA_HOST": None,
        "OLLAMA_API_KEY": None,
    }
    result = CliRunner().invoke(app, [], prog_name="ostream", env={**base, **env})
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    return [line for line in result.stdout.splitlines() if line]


TAGS = {
    "models": [
        {
            "name": "llama3.1:latest",
            "model": "llama3.1:latest",
            "details": {"parameter_size": "8B"},
        },
        {"name": "qwen3:0.6b", "model": "qwen3:0.6b"},
        {"name": "llava:7b", "model": "llava:7b"},
    ]
}


@pytest.mark.parametrize("command", ["generate", "chat"])
def test_think_offers_its_values(command: str) -> None:
    assert offered(f"ostream {command} --think ") == [
        "true",
        "false",
        "low",
        "medium",
        "high",
        "max",
    ]
    assert offered(f"ostream {command} --think m") == ["medium", "max"]


def test_model_offers_the_servers_models_from_host(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(json_reply(TAGS), path="/api/tags")
    names = offered(f"ostream generate --host {fake_ollama.url} -m ", OLLAMA_HOST="127.0.0.1:9")
    assert names == ["llama3.1:latest", "qwen3:0.6b", "llava:7b"]
    [request] = fake_ollama.requests
    assert (request.method, request.path) == ("GET", "/api/tags")


def test_model_offers_only_matching_names_from_ollama_host(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(json_reply(TAGS), path="/api/tags")
    assert offered("ostream chat -m ll", OLLAMA_HOST=fake_ollama.url) == [
        "llama3.1:latest",
        "llava:7b",
    ]


def test_model_offers_nothing_when_the_server_is_down() -> None:
    with socket.socket() as sock:  # bound, not listening: the port refuses
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        assert offered(f"ostream generate --host {url} -m ") == []


def test_model_offers_nothing_when_the_server_is_slow(fake_ollama: FakeOllama) -> None:
    answer = threading.Event()
    fake_ollama.script(
        Reply(events=[Wait(answer, 30), Send(json.dumps(TAGS).encode())]), path="/api/tags"
    )
    try:
        assert offered("ostream generate -m ", OLLAMA_HOST=fake_ollama.url) == []
    finally:
        answer.set()


def test_model_offers_nothing_when_the_answer_dribbles(fake_ollama: FakeOllama) -> None:
    # Every wait is shorter than the per-wait limit, the whole answer longer than its limit.
    head, tail = json.dumps(TAGS).split("[", 1)
    events: list[Event] = [Send(f"{head}[".encode())]
    events += [Sleep(0.3), Send(b" ")] * 5
    events += [Send(tail.encode())]
    fake_ollama.script(Reply(events=events), path="/api/tags")
    assert offered("ostream generate -m ", OLLAMA_HOST=fake_ollama.url) == []


@pytest.mark.parametrize(
    "reply",
    [text_reply(500, "boom"), text_reply(200, "<html>"), json_reply({"models": "no"})],
    ids=["500", "not-json", "odd-json"],
)
def test_model_offers_nothing_for_an_odd_answer(fake_ollama: FakeOllama, reply: Reply) -> None:
    fake_ollama.script(reply, path="/api/tags")
    assert offered("ostream generate -m ", OLLAMA_HOST=fake_ollama.url) == []


# --- -p's preset names, and `ostream presets show NAME` ---------------------------------


def test_preset_offers_the_names_found(tmp_path: Path) -> None:
    config = tmp_path / "config" / "ostream" / "presets"
    config.mkdir(parents=True)
    (config / "commit.md").write_text("---\ndescription: A commit message\n---\nX")
    (config / "compose.md").write_text("Y")
    (tmp_path / "fabric" / "summarize").mkdir(parents=True)
    (tmp_path / "fabric" / "summarize" / "system.md").write_text("Z")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "OSTREAM_PRESETS": str(tmp_path / "fabric")}
    assert offered("ostream generate -p com", **env) == ["commit", "compose"]
    assert offered("ostream chat --preset ", **env) == ["commit", "compose", "summarize"]
    assert offered("ostream presets ", **env) == ["show"]
    assert offered("ostream presets show s", **env) == ["summarize"]

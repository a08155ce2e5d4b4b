"""chat -c/--continue: the last chat without --history is kept under
$XDG_STATE_HOME/ostream/ in the --history format, and continued; not with OSTREAM_NOHISTORY."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ostream.testing import FakeOllama
from tests.inproc import invoke, sent


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}


def kept(env: dict[str, str]) -> list[dict[str, str]]:
    path = Path(env["XDG_STATE_HOME"]) / "ostream" / "last-chat.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_continue_sends_the_last_conversation(fake_ollama: FakeOllama, env: dict[str, str]) -> None:
    assert invoke(fake_ollama, "chat", "-m", "m", "-s", "Be terse.", "one", env=env).exit_code == 0
    assert kept(env) == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "echo: one"},
    ]
    result = invoke(fake_ollama, "chat", "-m", "m", "-c", "two", env=env)
    assert (result.exit_code, result.stdout) == (0, "echo: two\n")
    assert [m["content"] for m in sent(fake_ollama)["messages"]] == ["one", "echo: one", "two"]
    assert len(kept(env)) == 4
    invoke(fake_ollama, "chat", "-m", "m", "fresh", env=env)  # a new chat starts anew
    assert [m["content"] for m in kept(env)] == ["fresh", "echo: fresh"]


def test_the_state_folder_defaults_to_home(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    assert (
        invoke(
            fake_ollama, "chat", "-m", "m", "x", env={"HOME": str(tmp_path), "XDG_STATE_HOME": ""}
        ).exit_code
        == 0
    )
    assert (tmp_path / ".local" / "state" / "ostream" / "last-chat.jsonl").is_file()


def test_a_failed_turn_is_not_kept(fake_ollama: FakeOllama, env: dict[str, str]) -> None:
    invoke(fake_ollama, "chat", "-m", "m", "one", env=env)
    assert invoke(fake_ollama, "chat", "-m", "drop", "-c", "two", env=env).exit_code == 5
    assert invoke(fake_ollama, "chat", "-m", "drop", "three", env=env).exit_code == 5
    assert [m["content"] for m in kept(env)] == ["one", "echo: one"]


def test_nothing_kept_with_ostream_nohistory(fake_ollama: FakeOllama, env: dict[str, str]) -> None:
    off = {**env, "OSTREAM_NOHISTORY": "1"}
    assert invoke(fake_ollama, "chat", "-m", "m", "x", env=off).exit_code == 0
    assert not Path(env["XDG_STATE_HOME"]).exists()
    result = invoke(fake_ollama, "chat", "-m", "m", "-c", "x", env=off)
    assert result.exit_code == 2
    assert "OSTREAM_NOHISTORY" in result.stderr


def test_nothing_to_continue_is_exit_2(fake_ollama: FakeOllama, env: dict[str, str]) -> None:
    result = invoke(fake_ollama, "chat", "-m", "m", "-c", "x", env=env)
    assert result.exit_code == 2
    assert "no earlier chat to continue" in result.stderr
    assert not fake_ollama.requests


@pytest.mark.parametrize("other", [["--history", "h.jsonl"], ["--messages", "m.jsonl"]])
def test_continue_with_history_or_messages_is_exit_2(
    fake_ollama: FakeOllama, env: dict[str, str], other: list[str]
) -> None:
    result = invoke(fake_ollama, "chat", "-m", "m", "-c", *other, "x", env=env)
    assert result.exit_code == 2
    assert "-c continues the last chat" in result.stderr


def test_a_chat_with_history_leaves_the_last_chat_alone(
    fake_ollama: FakeOllama, env: dict[str, str], tmp_path: Path
) -> None:
    invoke(fake_ollama, "chat", "-m", "m", "one", env=env)
    args = ["chat", "-m", "m", "--history", str(tmp_path / "h.jsonl"), "two"]
    assert invoke(fake_ollama, *args, env=env).exit_code == 0
    assert [m["content"] for m in kept(env)] == ["one", "echo: one"]


def test_an_unwritable_state_folder_does_not_fail_the_chat(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    (tmp_path / "state").write_text("a file where the folder would be")
    env = {"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}
    result = invoke(fake_ollama, "chat", "-m", "m", "x", env=env)
    assert (result.exit_code, result.stderr) == (0, "")

"""Shell completion through Typer, for bash, zsh and fish, as the shells call it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.proc import env_for


def complete(shell: str, words: str, **extra: str) -> str:
    env = env_for("", _OSTREAM_COMPLETE=f"complete_{shell}", **extra)
    if shell == "bash":
        env.update(COMP_WORDS=words, COMP_CWORD=str(len(words.split()) - 1))
    else:
        env.update(_TYPER_COMPLETE_ARGS=words)
        if shell == "fish":
            env.update(_TYPER_COMPLETE_FISH_ACTION="get-args")
    result = subprocess.run(
        [sys.executable, "-m", "ostream"], capture_output=True, env=env, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.decode()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_commands_and_options_complete(shell: str) -> None:
    assert "generate" in complete(shell, "ostream gen")
    assert "--hide-thinking" in complete(shell, "ostream chat --hi")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_a_script(shell: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ostream", "--show-completion", shell],
        capture_output=True,
        env=env_for(""),
        timeout=30,
    )
    assert result.returncode == 0
    assert b"_OSTREAM_COMPLETE" in result.stdout

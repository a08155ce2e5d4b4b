"""Conversations: --messages and --history are read strictly, and a turn is saved only
when it is whole, to the file the user named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_ollama import FakeOllama
from tests.proc import run

# --- --messages ----------------------------------------------------------------------------


def test_messages_from_empty_stdin_without_words_is_a_usage_error(
    fake_ollama: FakeOllama,
) -> None:
    result = run(["chat", "-m", "m", "--messages", "-"], fake_ollama.url, input=b"")
    assert result.returncode == 2
    assert fake_ollama.requests == []


def test_messages_from_closed_stdin_is_a_usage_error(fake_ollama: FakeOllama) -> None:
    result = run(["chat", "-m", "m", "--messages", "-", "hi"], fake_ollama.url, close_fd=0)
    assert result.returncode == 2
    assert fake_ollama.requests == []


# --- --history -----------------------------------------------------------------------------


def test_history_through_a_symlink_updates_the_target_and_keeps_the_link(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    real = tmp_path / "real.jsonl"
    real.write_bytes(b'{"role":"user","content":"a"}\n{"role":"assistant","content":"b"}\n')
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    result = run(["chat", "-m", "m", "--history", str(link), "hi"], fake_ollama.url)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    assert len(real.read_bytes().splitlines()) == 4


# --- numbers JSON cannot hold --------------------------------------------------------------


@pytest.mark.parametrize("option", ["--messages", "--history"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e400"])
def test_a_non_finite_number_in_a_conversation_file_is_a_usage_error(
    fake_ollama: FakeOllama, tmp_path: Path, option: str, value: str
) -> None:
    conversation = tmp_path / "talk.jsonl"
    conversation.write_text('{"role":"user","content":"x","n":' + value + "}\n")
    result = run(["chat", "-m", "m", option, str(conversation), "hi"], fake_ollama.url)
    assert result.returncode == 2, result.stderr
    assert b"unexpected" not in result.stderr
    assert fake_ollama.requests == []

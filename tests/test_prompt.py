"""Where the prompt comes from: stdin first, words last, one blank line between."""

from __future__ import annotations

import io

import pytest

from ostream.errors import UsageError
from ostream.inputs import stdin_text
from ostream.prompt import assemble
from ostream.testing import FakeOllama
from tests.proc import run


class FakeStdin(io.BytesIO):
    def __init__(self, data: bytes, tty: bool = False) -> None:
        super().__init__(data)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_words_are_joined_with_single_spaces() -> None:
    assert assemble(None, ["Tell", "me", "a story"]) == "Tell me a story"


def test_stdin_first_then_a_blank_line_then_words() -> None:
    diff = "diff --git a/x b/x\n+line\n\n\n"
    assert assemble(diff, ["Write", "a commit message"]) == (
        "diff --git a/x b/x\n+line" + "\n\n" + "Write a commit message"
    )


def test_only_stdin_is_sent_as_it_is() -> None:
    assert assemble("  text with trailing newlines\n\n", []) == "  text with trailing newlines\n\n"


def test_no_prompt_is_none() -> None:
    assert assemble(None, []) is None


def test_stdin_is_read_when_not_a_terminal() -> None:
    assert stdin_text(FakeStdin("héllo\n".encode()), {}) == "héllo\n"


def test_terminal_stdin_is_not_read() -> None:
    assert stdin_text(FakeStdin(b"typed", tty=True), {}) is None


def test_empty_or_missing_stdin_is_none() -> None:
    assert stdin_text(FakeStdin(b""), {}) is None
    assert stdin_text(None, {}) is None


def test_stdin_that_is_not_utf8_is_a_usage_error_saying_so() -> None:
    with pytest.raises(UsageError) as info:
        stdin_text(FakeStdin(b"caf\xe9\n"), {})
    assert "UTF-8" in info.value.message
    assert info.value.code == 2


def test_a_prompt_word_that_is_not_utf8_is_a_usage_error(fake_ollama: FakeOllama) -> None:
    result = run(["generate", "-m", "m", b"caf\xe9"], fake_ollama.url)
    assert result.returncode == 2
    assert b"unexpected" not in result.stderr
    assert fake_ollama.requests == []

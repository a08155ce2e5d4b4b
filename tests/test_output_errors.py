"""A stdout that cannot be written (closed, a full disk): exit 1 with one line, for every
command."""

from __future__ import annotations

import pytest

from ostream.testing import FakeOllama
from tests.proc import run

FULL = b"ostream: error: cannot write to stdout: No space left on device\n"
EVERY_COMMAND = [
    ["generate", "-m", "m", "hi"],
    ["chat", "-m", "m", "hi"],
    ["raw", "/api/tags"],
    ["--version"],
    ["--help"],
    ["generate", "--help"],
    ["raw", "-h"],
    [],
]


@pytest.mark.parametrize("args", EVERY_COMMAND, ids=lambda a: " ".join(a) or "(none)")
def test_a_closed_stdout_is_1_cannot_write(fake_ollama: FakeOllama, args: list[str]) -> None:
    """`ostream ... >&-`: the same status as /dev/full, and nothing is sent."""
    result = run(args, fake_ollama.url, stdout=None, close_fd=1)
    assert result.returncode == 1
    assert result.stderr == b"ostream: error: cannot write to stdout: it is closed\n"
    assert fake_ollama.requests == []


@pytest.mark.parametrize("args", EVERY_COMMAND[:7], ids=" ".join)
def test_a_full_disk_is_1_cannot_write(fake_ollama: FakeOllama, args: list[str]) -> None:
    with open("/dev/full", "wb") as full:
        result = run(args, fake_ollama.url, stdout=full)
    assert result.returncode == 1
    assert result.stderr == FULL

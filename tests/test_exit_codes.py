"""Exit statuses that depend on the process's own file descriptors."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from ostream.testing import FakeOllama
from tests.proc import env_for

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


def _run(args: list[str], url: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "ostream", *args],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env_for(url),
        timeout=30,
        **kwargs,
    )


@pytest.mark.parametrize("args", EVERY_COMMAND, ids=lambda a: " ".join(a) or "(none)")
def test_a_closed_stdout_is_1_cannot_write(fake_ollama: FakeOllama, args: list[str]) -> None:
    """`ostream ... >&-`: the same status as /dev/full, and nothing is sent."""
    result = _run(args, fake_ollama.url, stdout=None, preexec_fn=lambda: os.close(1))
    assert result.returncode == 1
    assert result.stderr == b"ostream: error: cannot write to stdout: it is closed\n"
    assert fake_ollama.requests == []


@pytest.mark.parametrize("args", EVERY_COMMAND[:7], ids=" ".join)
def test_a_full_disk_is_1_cannot_write(fake_ollama: FakeOllama, args: list[str]) -> None:
    with open("/dev/full", "wb") as full:
        result = _run(args, fake_ollama.url, stdout=full)
    assert result.returncode == 1
    assert result.stderr == FULL

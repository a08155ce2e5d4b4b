"""Shared fixtures. Keep this file small."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # make `tests.fake_ollama` importable under any import mode
    sys.path.insert(0, _ROOT)

from tests.fake_ollama import FakeOllama  # noqa: E402


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    """A started fake Ollama server (see tests/fake_ollama.py), stopped afterwards."""
    with FakeOllama() as server:
        yield server

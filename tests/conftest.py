"""Shared fixtures. Keep this file small."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported by pytest_plugins below, where pytest can rewrite its asserts
    from ostream.testing import FakeOllama

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # make `tests.proc` and friends importable under any import mode
    sys.path.insert(0, _ROOT)

# The fake Ollama server and its `fake_ollama` fixture (a started FakeOllama).
pytest_plugins = ["ostream.testing"]

# chat keeps its last conversation in $XDG_STATE_HOME (chat -c) and -p looks in
# $XDG_CONFIG_HOME: never the user's own folders, in this process or those it starts.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="ostream-tests-state-")
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="ostream-tests-config-")

# A suite started in the background by a non-interactive shell (`cmd &`, some CI runners)
# inherits SIGINT ignored, and exec() passes an ignored signal on to every ostream the tests
# spawn, which rightly leaves it ignored (CONTRACT: Signals). The signal tests need the
# disposition a user's shell gives, so undo an inherited SIG_IGN here; a Python-level
# handler in this process becomes SIG_DFL in a child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture
def servers() -> Iterator[list[FakeOllama]]:
    """Two fake Ollama servers, for commands across several hosts."""
    from ostream.testing import FakeOllama

    with FakeOllama() as a, FakeOllama() as b:
        yield [a, b]

"""A fake Ollama server for tests, CI and demos without a GPU (stdlib only).

It speaks Ollama's HTTP API at the byte level (see :mod:`ostream.testing.server`),
answers by canned behaviours picked by the model name (see
:data:`ostream.testing.behaviours.BEHAVIOURS`) or by scripted replies, and with
``sim=Sim(...)`` simulates a real server's timing: slots, a queue, loads, swaps,
token rates and faults (see :mod:`ostream.testing.sim`). :class:`Fleet` runs several.

Enable its pytest fixtures (``fake_ollama``, ``fake_fleet``) with
``pytest_plugins = ["ostream.testing"]`` in a conftest.py. Serve by hand with
``python -m ostream.testing [--hosts K] ...``. Documented in docs/testing.md.
"""

from __future__ import annotations

import sys

from ostream.testing.behaviours import (
    BEHAVIOURS,
    BURST_BATCH,
    BUSY_MESSAGE,
    CONTROL_TEXT,
    ECHO_PREFIX,
    ERROR_MID_MESSAGE,
    SPLIT_UTF8_TEXT,
    THINK_TEXT,
    TOOL_CALLS,
)
from ostream.testing.events import (
    At,
    Burst,
    Drop,
    Event,
    Recorded,
    Reply,
    Send,
    Sleep,
    Stall,
    Wait,
)
from ostream.testing.fake import FakeOllama
from ostream.testing.fleet import Fleet
from ostream.testing.replies import (
    CONTEXT,
    chat_chunks,
    created_at,
    error_reply,
    gen_chunks,
    go_json,
    json_reply,
    metrics,
    ndjson,
    text_reply,
    tokenize,
)
from ostream.testing.scheduler import Counters
from ostream.testing.sim import Sim

__all__ = [
    "BEHAVIOURS",
    "BURST_BATCH",
    "BUSY_MESSAGE",
    "CONTEXT",
    "CONTROL_TEXT",
    "ECHO_PREFIX",
    "ERROR_MID_MESSAGE",
    "SPLIT_UTF8_TEXT",
    "THINK_TEXT",
    "TOOL_CALLS",
    "At",
    "Burst",
    "Counters",
    "Drop",
    "Event",
    "FakeOllama",
    "Fleet",
    "Recorded",
    "Reply",
    "Send",
    "Sim",
    "Sleep",
    "Stall",
    "Wait",
    "chat_chunks",
    "created_at",
    "error_reply",
    "gen_chunks",
    "go_json",
    "json_reply",
    "metrics",
    "ndjson",
    "text_reply",
    "tokenize",
]

# Loaded as a pytest plugin (`pytest_plugins = ["ostream.testing"]`): offer the fixtures.
# Imported anywhere else, this package needs nothing but the standard library.
if "pytest" in sys.modules:
    from ostream.testing.plugin import fake_fleet, fake_ollama

    __all__ += ["fake_fleet", "fake_ollama"]

"""The clients bench.py runs: ostream and the ones people would otherwise use.

A peer turns a Job (what to ask the fake server for) into a command line; peers
that cannot run here (no curl, no jq, no `ollama` package) are skipped with a reason.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PROMPT = "Why is the sky blue?"


@dataclass(frozen=True)
class Job:
    """What one client run asks the server for: a model of the fake and its options."""

    url: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    prompt: str = PROMPT

    def body(self) -> str:
        return json.dumps(
            {"model": self.model, "prompt": self.prompt, "stream": True, "options": self.options}
        )


@dataclass(frozen=True)
class Peer:
    name: str
    argv: Callable[[Job], list[str]]
    lines: bool  # output is NDJSON lines (count b"\n"), else answer text (count b"tok")
    needs: tuple[str, ...] = ()  # programs on PATH
    imports: str = ""  # a module the client process must be able to import


def ostream_args(job: Job, *, jsonl: bool = False) -> list[str]:
    args = ["generate", "--host", job.url, "-m", job.model]
    for key, value in job.options.items():
        args += ["-o", f"{key}={json.dumps(value)}"]
    return [*args, *(["--jsonl"] if jsonl else []), job.prompt]


def console_script() -> Path:
    return Path(sys.executable).parent / "ostream"


def _curl(job: Job) -> list[str]:
    return ["curl", "-sN", job.url + "/api/generate", "--data-binary", job.body()]


_CURL_JQ = 'curl -sN "$1/api/generate" --data-binary "$2" | jq --unbuffered -j .response'


def all_peers() -> list[Peer]:
    py = sys.executable
    return [
        Peer(
            "ostream",
            lambda j: [py, "-m", "ostream", *ostream_args(j)],
            False,
            imports="ostream.cli",
        ),
        Peer(
            "ostream --jsonl",
            lambda j: [py, "-m", "ostream", *ostream_args(j, jsonl=True)],
            True,
            imports="ostream.cli",
        ),
        Peer(
            "ostream (script)",
            lambda j: [str(console_script()), *ostream_args(j)],
            False,
            imports="ostream.cli",
        ),
        Peer("curl", _curl, True, needs=("curl",)),
        Peer(
            "curl | jq",
            lambda j: ["bash", "-c", _CURL_JQ, "bash", j.url, j.body()],
            False,
            needs=("curl", "jq", "bash"),
        ),
        Peer(
            "ollama client",
            lambda j: [py, str(BENCH / "peer_ollama.py"), j.url, j.body()],
            False,
            imports="ollama",
        ),
        Peer(
            "requests loop",
            lambda j: [py, str(BENCH / "peer_requests.py"), j.url, j.body()],
            False,
            imports="requests",
        ),
    ]


def missing_reason(peer: Peer) -> str | None:
    """Why `peer` cannot run here, or None."""
    for program in peer.needs:
        if shutil.which(program) is None:
            return f"{program} not found"
    if peer.name == "ostream (script)" and not console_script().exists():
        return f"no console script at {console_script()}"
    if peer.imports and not importable(peer.imports):
        return f"`import {peer.imports}` fails in {sys.executable}"
    return None


@functools.cache
def importable(module: str) -> bool:
    """Whether a client process (this interpreter, the clients' environment) can import it."""
    try:
        probe = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=child_env(),
            cwd=ROOT,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def child_env() -> dict[str, str]:
    """The environment without anything that would redirect or reconfigure a client."""
    drop = ("OLLAMA_", "OSTREAM_", "PYTHON")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(drop) and not k.lower().endswith("_proxy") and k != "NO_COLOR"
    }
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    return env

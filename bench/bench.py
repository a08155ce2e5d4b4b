"""Measure ostream side by side with its peers, in one run, against the fake Ollama server.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/bench.py            # the full run (about 2 minutes on 2 cores)
    .venv/bin/python bench/bench.py --quick    # a smoke run (well under a minute)

Every client is a separate process that reads from the in-process fake server and writes
to a pipe this script drains (os.read in a select loop, timestamps from time.monotonic()).
Peers are measured interleaved, round by round, and reported as ratios to ostream (text
mode), because absolute numbers on a shared 2-core machine mean little.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ostream.testing import (  # noqa: E402
    CONTEXT,
    Event,
    FakeOllama,
    Recorded,
    Reply,
    Send,
    created_at,
    go_json,
    metrics,
)

MEASUREMENTS = ("latency", "throughput", "startup", "memory")
PROMPT = "Why is the sky blue?"
BURST_BATCH = 64  # NDJSON lines per HTTP chunk in throughput/memory runs, as the fake's `burst`

# Targets checked in the "goals" block.
GOAL_LATENCY_P99_MS = 1.0
GOAL_THROUGHPUT_VS_REQUESTS = 1.3
GOAL_STARTUP_VS_REQUESTS = 1.6
GOAL_RSS_GROWTH = 1.25


# --------------------------------------------------------------------------- peers


@dataclass(frozen=True)
class Job:
    """What one client run asks the server for."""

    url: str
    model: str
    options: dict[str, Any]
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
    note: str = ""


def _ostream_args(job: Job, *, jsonl: bool) -> list[str]:
    args = ["generate", "--host", job.url, "-m", job.model]
    for key, value in job.options.items():
        args += ["-o", f"{key}={json.dumps(value)}"]
    if jsonl:
        args.append("--jsonl")
    return [*args, job.prompt]


def _curl(job: Job) -> list[str]:
    return [
        "curl",
        "-sN",
        job.url + "/api/generate",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        job.body(),
    ]


CURL_JQ = (
    'curl -sN "$1/api/generate" -H "Content-Type: application/json" --data-binary "$2"'
    " | jq --unbuffered -j .response"
)


def console_script() -> Path:
    return Path(sys.executable).parent / "ostream"


def all_peers() -> list[Peer]:
    py = sys.executable
    return [
        Peer("ostream", lambda j: [py, "-m", "ostream", *_ostream_args(j, jsonl=False)], False),
        Peer(
            "ostream --jsonl",
            lambda j: [py, "-m", "ostream", *_ostream_args(j, jsonl=True)],
            True,
        ),
        Peer(
            "ostream (script)",
            lambda j: [str(console_script()), *_ostream_args(j, jsonl=False)],
            False,
            "console script",
        ),
        Peer("curl", _curl, True, "raw bytes: the floor"),
        Peer(
            "curl | jq",
            lambda j: ["bash", "-c", CURL_JQ, "bash", j.url, j.body()],
            False,
            "jq --unbuffered -j",
        ),
        Peer(
            "ollama client",
            lambda j: [py, str(BENCH / "peer_ollama.py"), j.url, j.body()],
            False,
        ),
        Peer(
            "requests loop",
            lambda j: [py, str(BENCH / "peer_requests.py"), j.url, j.body()],
            False,
        ),
    ]


def missing_reason(peer: Peer) -> str | None:
    """Why `peer` cannot run here, or None."""
    if peer.name.startswith("curl") and shutil.which("curl") is None:
        return "curl not found"
    if peer.name == "curl | jq" and (shutil.which("jq") is None or shutil.which("bash") is None):
        return "jq (or bash) not found"
    if peer.name == "ollama client" and not importable("ollama"):
        return f"`import ollama` fails ({sys.executable} -m pip install ollama)"
    if peer.name == "ostream (script)" and not console_script().exists():
        return f"no console script at {console_script()}"
    if peer.name.startswith("ostream") and not importable("ostream.cli"):
        return "`import ostream.cli` fails: run with the project's virtualenv"
    if peer.name == "requests loop" and not importable("requests"):
        return "`import requests` fails"
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


# --------------------------------------------------------------------------- the server side


class LazyEvents(list[Event]):
    """Events produced while the reply is played, so millions of lines need no memory."""

    def __init__(self, make: Callable[[], Iterator[Event]]) -> None:
        super().__init__()
        self._make = make

    def __iter__(self) -> Iterator[Event]:
        return self._make()


def burst_reply(model: str, count: int) -> Reply:
    """`count` generate lines ("tok " each), BURST_BATCH per HTTP chunk, then the done line."""
    line = go_json({"model": model, "created_at": created_at(), "response": "tok ", "done": False})
    line += b"\n"
    block = line * BURST_BATCH
    done = {
        "model": model,
        "created_at": created_at(),
        "response": "",
        "done": True,
        "done_reason": "stop",
        "context": CONTEXT,
        **metrics(count),
    }

    def events() -> Iterator[Event]:
        full, rest = divmod(count, BURST_BATCH)
        for _ in range(full):
            yield Send(block)
        if rest:
            yield Send(line * rest)
        yield Send(go_json(done) + b"\n")

    return Reply(events=LazyEvents(events))


# --------------------------------------------------------------------------- running a client


@dataclass
class Run:
    peer: str
    spawn_at: float
    ok: bool = False
    error: str = ""
    request: Recorded | None = None
    eof_at: float | None = None
    exit_at: float | None = None
    nbytes: int = 0
    newlines: int = 0
    returncode: int | None = None
    cpu: float = 0.0  # user + sys seconds, children included
    maxrss_kb: int = 0
    marks: list[float] = field(default_factory=list)  # arrival time of each token / line


class Runner:
    def __init__(self, server: FakeOllama, env: dict[str, str]) -> None:
        self.server = server
        self.env = env
        self.live: subprocess.Popen[bytes] | None = None
        self.gnu_time = gnu_time()

    def run(
        self,
        name: str,
        argv: list[str],
        *,
        timeout: float,
        mark: bytes | None = None,
        script: Reply | None = None,
        expect_request: bool = True,
        peak_rss: bool = False,
    ) -> Run:
        """Spawn `argv`, drain its stdout until EOF, reap it; kill its group on timeout.

        `mark`: record the arrival time of every occurrence of these bytes in the output.
        `peak_rss`: run it under GNU time for a true peak RSS (see `gnu_time`).
        """
        if script is not None:
            self.server.script(script)
        before = len(self.server.requests)
        seen = bytearray()
        with tempfile.TemporaryFile() as errfile, tempfile.NamedTemporaryFile() as rssfile:
            if peak_rss and self.gnu_time:
                argv = [self.gnu_time, "-f", "%M", "-o", rssfile.name, *argv]
            spawn_at = time.monotonic()
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=errfile,
                    env=self.env,
                    cwd=ROOT,
                    start_new_session=True,
                )
            except OSError as exc:
                return Run(name, spawn_at, error=f"cannot start: {exc}")
            self.live = proc
            result = Run(name, spawn_at)
            assert proc.stdout is not None
            fd = proc.stdout.fileno()
            deadline = spawn_at + timeout
            try:
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        result.error = f"timed out after {timeout:g}s"
                        break
                    ready, _, _ = select.select([fd], [], [], remaining)
                    if not ready:
                        continue
                    data = os.read(fd, 1 << 16)
                    now = time.monotonic()
                    if not data:
                        result.eof_at = now
                        break
                    result.nbytes += len(data)
                    result.newlines += data.count(b"\n")
                    if mark is not None:
                        seen += data
                        found = seen.count(mark)
                        result.marks.extend([now] * (found - len(result.marks)))
            finally:
                self._reap(proc, result, kill=result.eof_at is None)
                self.live = None
                proc.stdout.close()
            errfile.seek(0)
            stderr = errfile.read(2000).decode("utf-8", "replace").strip()
            if peak_rss and self.gnu_time:
                result.maxrss_kb = _last_int(Path(rssfile.name).read_text("utf-8", "replace"))
        if len(self.server.requests) > before:
            result.request = self.server.requests[before]
        if not result.error and result.returncode != 0:
            last = stderr.splitlines()[-1] if stderr else ""
            result.error = f"exit {result.returncode}: {last}"[:160]
        if not result.error and expect_request and result.request is None:
            result.error = "no request reached the server"
        result.ok = not result.error
        return result

    def _reap(self, proc: subprocess.Popen[bytes], result: Run, *, kill: bool) -> None:
        if kill:
            _kill_group(proc.pid)
        deadline = time.monotonic() + 10
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                _kill_group(proc.pid)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.0005)
        result.exit_at = time.monotonic()
        result.returncode = proc.returncode = os.waitstatus_to_exitcode(status)
        result.cpu = usage.ru_utime + usage.ru_stime
        result.maxrss_kb = usage.ru_maxrss
        # The child's process group may still hold stragglers (a shell pipeline's members).
        _kill_group(proc.pid)

    def kill_live(self) -> None:
        if self.live is not None:
            _kill_group(self.live.pid)


def gnu_time() -> str | None:
    """GNU time, if installed: the honest way to get a child's peak RSS.

    os.wait4's ru_maxrss is useless here: subprocess starts children with vfork, and
    exec() records the peak RSS of the address space it replaces, which is the bench's own,
    so every child would report at least the bench's size. GNU time forks from its own
    small address space, so what it reports is the client's peak (a pipeline: its largest
    process).
    """
    path = shutil.which("time") or "/usr/bin/time"
    if not os.path.exists(path):
        return None
    try:
        probe = subprocess.run(
            [path, "-f", "%M", "true"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if probe.returncode == 0 and _last_int(probe.stderr.decode()) > 0 else None


def _last_int(text: str) -> int:
    lines = text.strip().splitlines()
    try:
        return int(lines[-1]) if lines else 0
    except ValueError:
        return 0


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)


def log(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------- statistics and tables


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def ratio(value: float | None, reference: float | None) -> str:
    if value is None or reference is None or reference == 0:
        return "-"
    return f"{value / reference:.2f}x"


def num(value: float | None, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], notes: list[str]
) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def fmt(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    print(f"\n## {title}")
    print(fmt(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(fmt(row))
    for note in notes:
        print(f"  note: {note}")
    sys.stdout.flush()


def rotate(items: list[Peer], k: int) -> list[Peer]:
    """The round-robin order of round `k`, so no peer always runs first or last."""
    if not items:
        return items
    k %= len(items)
    return items[k:] + items[:k]


# --------------------------------------------------------------------------- measurements


@dataclass
class Results:
    latency_p99: dict[str, float] = field(default_factory=dict)
    rate: dict[str, float] = field(default_factory=dict)
    startup: dict[str, float] = field(default_factory=dict)
    rss_small: dict[str, int] = field(default_factory=dict)
    rss_big: dict[str, int] = field(default_factory=dict)
    light: dict[str, bool] = field(default_factory=dict)  # --version/--help skip requests


def measure_latency(runner: Runner, peers: list[Peer], rounds: int, res: Results) -> None:
    tokens, delay = 80, 0.005
    samples: dict[str, list[float]] = {p.name: [] for p in peers}
    firsts: dict[str, list[float]] = {p.name: [] for p in peers}
    notes: list[str] = []
    for r in range(rounds):
        log(f"latency: round {r + 1}/{rounds}")
        for peer in rotate(peers, r):
            job = Job(runner.server.url, "paced", {"fake_tokens": tokens, "fake_delay": delay})
            mark = b"\n" if peer.lines else b"tok"
            run = runner.run(peer.name, peer.argv(job), timeout=30, mark=mark)
            if not run.ok or run.request is None:
                notes.append(f"{peer.name}: round {r + 1}: {run.error}")
                continue
            sent = [t for t, _ in run.request.sent][:tokens]
            got = run.marks[:tokens]
            if len(got) < tokens or len(sent) < tokens:
                notes.append(f"{peer.name}: round {r + 1}: {len(got)}/{tokens} tokens seen")
            added = [(g - s) * 1e3 for g, s in zip(got, sent, strict=False)]
            samples[peer.name] += added
            firsts[peer.name] += added[:1]
    stats: dict[str, tuple[float, float, float]] = {}
    for name, values in samples.items():
        if values:
            stats[name] = (percentile(values, 50), percentile(values, 99), max(values))
    # The first token also carries the response headers and the client's set-up after them.
    rest = {
        name: [v for i, v in enumerate(values) if i % tokens] for name, values in samples.items()
    }
    ref = stats.get("ostream")
    rows = []
    for peer in peers:
        if peer.name not in stats:
            rows.append([peer.name, "0", "-", "-", "-", "-", "-", "-", "-"])
            continue
        p50, p99, worst = stats[peer.name]
        rows.append(
            [
                peer.name,
                str(len(samples[peer.name])),
                f"{p50:.3f}",
                f"{p99:.3f}",
                f"{worst:.3f}",
                f"{statistics.median(firsts[peer.name]):.3f}",
                num(percentile(rest[peer.name], 99) if rest[peer.name] else None, ".3f"),
                ratio(p50, ref[0] if ref else None),
                ratio(p99, ref[1] if ref else None),
            ]
        )
        res.latency_p99[peer.name] = p99
    notes.insert(
        0,
        f"model paced, {tokens} tokens {delay * 1e3:g} ms apart, {rounds} round(s); per token: "
        "server flushed its chunk -> its bytes read from the client's stdout pipe",
    )
    table(
        "1. added latency per token (ms, lower is better)",
        [
            "peer",
            "samples",
            "p50",
            "p99",
            "max",
            "1st token",
            "p99 w/o 1st",
            "p50 x ostream",
            "p99 x ostream",
        ],
        rows,
        notes,
    )


def measure_throughput(
    runner: Runner, peers: list[Peer], rounds: int, count: int, res: Results
) -> None:
    runs: dict[str, list[Run]] = {p.name: [] for p in peers}
    notes: list[str] = []
    for r in range(rounds):
        log(f"throughput: run {r + 1}/{rounds} ({count:,} chunks)")
        for peer in rotate(peers, r):
            job = Job(runner.server.url, "burst", {"fake_tokens": count})
            run = runner.run(
                peer.name, peer.argv(job), timeout=120, script=burst_reply("burst", count)
            )
            problem = run.error or _short_output(peer, run, count)
            if problem:
                notes.append(f"{peer.name}: run {r + 1}: {problem}")
                continue
            runs[peer.name].append(run)
    table_rows: dict[str, tuple[float, float, float]] = {}
    for name, done in runs.items():
        if not done:
            continue
        walls = [_wall(run) for run in done]
        table_rows[name] = (
            statistics.median(count / w for w in walls),
            statistics.median(run.cpu for run in done),
            statistics.median(walls),
        )
    ref = table_rows.get("ostream")
    rows = []
    for peer in peers:
        if peer.name not in table_rows:
            rows.append([peer.name, "-", "-", "-", "-", "-"])
            continue
        rate, cpu, wall = table_rows[peer.name]
        rows.append(
            [
                peer.name,
                f"{rate:,.0f}",
                f"{wall:.3f}",
                f"{cpu:.3f}",
                ratio(rate, ref[0] if ref else None),
                ratio(cpu, ref[1] if ref else None),
            ]
        )
        res.rate[peer.name] = rate
    notes.insert(
        0,
        f"{count:,} generate chunks ({BURST_BATCH} per HTTP chunk) written to a pipe drained "
        f"by the bench; median of {rounds}; wall = request arrival -> EOF on stdout; "
        "CPU = user+sys of the client (a pipeline: all its processes)",
    )
    table(
        "2. throughput (higher chunks/s is better)",
        ["peer", "chunks/s", "wall s", "CPU s", "chunks/s x ostream", "CPU x ostream"],
        rows,
        notes,
    )


def _wall(run: Run) -> float:
    assert run.request is not None and run.eof_at is not None
    return run.eof_at - run.request.received_at


def _short_output(peer: Peer, run: Run, count: int) -> str:
    if peer.lines and run.newlines < count + 1:
        return f"short output: {run.newlines:,} lines for {count + 1:,}"
    if not peer.lines and run.nbytes < 4 * count:
        return f"short output: {run.nbytes:,} bytes for {4 * count:,}"
    return ""


def measure_startup(runner: Runner, peers: list[Peer], rounds: int, res: Results) -> None:
    py = sys.executable
    ostream_cmd = [py, "-m", "ostream"]
    # Commands timed from spawn to exit (no request), beside the spawn->request peers.
    walls: dict[str, list[str]] = {
        "ostream --version": [*ostream_cmd, "--version"],
        "ostream --help": [*ostream_cmd, "--help"],
        "ostream (script) --version": [str(console_script()), "--version"],
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import requests'": [py, "-c", "import requests"],
        "python -c 'import typer'": [py, "-c", "import typer"],
    }
    if not console_script().exists():
        del walls["ostream (script) --version"]
    spawn_ms: dict[str, list[float]] = {p.name: [] for p in peers}
    wall_ms: dict[str, list[float]] = {k: [] for k in walls}
    cpu_ms: dict[str, list[float]] = {k: [] for k in walls}
    notes: list[str] = []
    jobs: list[tuple[str, Peer | None]] = [(p.name, p) for p in peers]
    jobs += [(name, None) for name in walls]
    for r in range(rounds):
        log(f"startup: round {r + 1}/{rounds}")
        k = r % len(jobs)
        for name, peer in jobs[k:] + jobs[:k]:
            if peer is not None:
                job = Job(runner.server.url, "paced", {"fake_tokens": 1, "fake_delay": 0})
                run = runner.run(name, peer.argv(job), timeout=30)
                if run.ok and run.request is not None:
                    spawn_ms[name].append((run.request.received_at - run.spawn_at) * 1e3)
                else:
                    notes.append(f"{name}: round {r + 1}: {run.error}")
            else:
                run = runner.run(name, walls[name], timeout=30, expect_request=False)
                if run.ok and run.exit_at is not None:
                    wall_ms[name].append((run.exit_at - run.spawn_at) * 1e3)
                    cpu_ms[name].append(run.cpu * 1e3)
                else:
                    notes.append(f"{name}: round {r + 1}: {run.error}")
    med = {k: statistics.median(v) for k, v in spawn_ms.items() if v}
    ref = med.get("ostream")
    rows = []
    for peer in peers:
        values = spawn_ms[peer.name]
        if not values:
            rows.append([peer.name, "-", "-", "-"])
            continue
        rows.append(
            [peer.name, f"{med[peer.name]:.1f}", f"{min(values):.1f}", ratio(med[peer.name], ref)]
        )
        res.startup[peer.name] = med[peer.name]
    notes.insert(
        0,
        f"median of {rounds} interleaved rounds; ostream = `{Path(py).name} -m ostream generate`, "
        f"ostream (script) = {console_script()}",
    )
    table(
        "3a. startup: spawn -> request at the server (ms, lower is better)",
        ["peer", "median", "min", "x ostream"],
        rows,
        notes,
    )
    wmed = {k: statistics.median(v) for k, v in wall_ms.items() if v}
    wref = wmed.get("ostream --version")
    wrows = []
    for name in walls:
        if name not in wmed:
            wrows.append([name, "-", "-", "-", "-"])
            continue
        wrows.append(
            [
                name,
                f"{wmed[name]:.1f}",
                f"{min(wall_ms[name]):.1f}",
                f"{statistics.median(cpu_ms[name]):.1f}",
                ratio(wmed[name], wref),
            ]
        )
    table(
        "3b. startup: spawn -> exit (ms, lower is better)",
        ["command", "median", "min", "CPU ms", "x ostream --version"],
        wrows,
        [f"median of {rounds} rounds, interleaved with 3a"],
    )
    import_check(runner, res)


def import_check(runner: Runner, res: Results) -> None:
    """Which heavy modules `--version`, `--help` and `generate` import (python -X importtime)."""
    py = sys.executable
    job = Job(runner.server.url, "paced", {"fake_tokens": 1, "fake_delay": 0})
    commands = {
        "--version": [py, "-X", "importtime", "-m", "ostream", "--version"],
        "--help": [py, "-X", "importtime", "-m", "ostream", "--help"],
        "generate": [py, "-X", "importtime", "-m", "ostream", *_ostream_args(job, jsonl=False)],
    }
    watched = ("requests", "urllib3", "typer", "click", "rich", "prompt_toolkit", "json", "ostream")
    rows = []
    tops: list[tuple[int, str]] = []
    for label, argv in commands.items():
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=runner.env,
                cwd=ROOT,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            rows.append([label, f"failed: {exc}", "", "", ""])
            continue
        if proc.returncode != 0:
            rows.append([label, f"failed: exit {proc.returncode}", "", "", ""])
            continue
        modules = _importtime(proc.stderr.decode("utf-8", "replace"))
        roots = {name.strip().split(".")[0] for name, _, _ in modules}
        total_ms = sum(self_us for _, self_us, _ in modules) / 1e3
        loaded = " ".join(w for w in watched if w in roots)
        requests = "yes" if "requests" in roots else "no"
        rows.append([label, str(len(modules)), f"{total_ms:.1f}", requests, loaded])
        if label != "generate" and modules:
            res.light[label] = requests == "no"
        if label == "generate":
            tops = sorted(
                ((cum, name) for name, _, cum in modules if not name.startswith(" ")),
                reverse=True,
            )[:8]
    top = ", ".join(f"{name} {cum / 1e3:.1f}" for cum, name in tops)
    table(
        "3c. imports (python -X importtime; import ms inflated by the tracing)",
        ["ostream", "modules", "import ms", "requests?", "loaded, of: " + " ".join(watched)],
        rows,
        [f"generate, slowest top-level imports (cumulative ms): {top}" if top else "no profile"],
    )


def _importtime(text: str) -> list[tuple[str, int, int]]:
    """(module name with its nesting indent, self us, cumulative us) per imported module."""
    found = []
    for line in text.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (.*)$", line)
        if match:
            found.append((match.group(3), int(match.group(1)), int(match.group(2))))
    return found


def measure_memory(
    runner: Runner, peers: list[Peer], small: int, big: int | None, res: Results
) -> None:
    big_names = ("ostream", "ostream --jsonl", "requests loop")
    notes: list[str] = []
    sizes = [(small, peers)]
    if big is not None:
        sizes.append((big, [p for p in peers if p.name in big_names]))
    for count, group in sizes:
        target = res.rss_small if count == small else res.rss_big
        for peer in group:
            log(f"memory: {peer.name}, {count:,} chunks")
            job = Job(runner.server.url, "burst", {"fake_tokens": count})
            run = runner.run(
                peer.name,
                peer.argv(job),
                timeout=300,
                script=burst_reply("burst", count),
                peak_rss=True,
            )
            problem = run.error or _short_output(peer, run, count)
            if problem:
                notes.append(f"{peer.name}: {count:,} chunks: {problem}")
                continue
            target[peer.name] = run.maxrss_kb
    ref_s, ref_b = res.rss_small.get("ostream"), res.rss_big.get("ostream")
    rows = []
    for peer in peers:
        s, b = res.rss_small.get(peer.name), res.rss_big.get(peer.name)
        rows.append(
            [
                peer.name,
                num(s / 1024 if s else None, ".1f"),
                num(b / 1024 if b else None, ".1f"),
                ratio(b, s),
                ratio(s, ref_s),
                ratio(b, ref_b),
            ]
        )
    big_text = f"{big:,}" if big is not None else "skipped"
    how = (
        f"GNU time's %M ({runner.gnu_time})"
        if runner.gnu_time
        else "os.wait4 ru_maxrss, an UPPER BOUND: it includes the bench's own RSS "
        "inherited through vfork (install GNU time for true values)"
    )
    notes[:0] = [
        f"peak RSS for {small:,} and {big_text} chunks, by {how}",
        f"a pipeline: its largest process; only {', '.join(big_names)} run the big stream",
    ]
    big_label = f"{big // 1_000_000}M" if big is not None and big >= 1_000_000 else "big"
    table(
        "4. memory: peak RSS (MB, lower is better)",
        [
            "peer",
            f"{small // 1000}k",
            big_label,
            f"{big_label}/{small // 1000}k",
            f"{small // 1000}k x ostream",
            f"{big_label} x ostream",
        ],
        rows,
        notes,
    )


def goals(res: Results) -> None:
    print("\n## goals")
    lines: list[tuple[str, str]] = []
    p99 = res.latency_p99.get("ostream")
    lines.append(
        ("SKIP", "latency not measured")
        if p99 is None
        else (
            "PASS" if p99 <= GOAL_LATENCY_P99_MS else "FAIL",
            f"added latency p99 <= {GOAL_LATENCY_P99_MS:g} ms (ostream text): {p99:.3f} ms",
        )
    )
    ours, theirs = res.rate.get("ostream"), res.rate.get("requests loop")
    lines.append(
        ("SKIP", "throughput of ostream or the requests loop not measured")
        if ours is None or theirs is None
        else (
            "PASS" if ours >= GOAL_THROUGHPUT_VS_REQUESTS * theirs else "FAIL",
            f"chunks/s >= {GOAL_THROUGHPUT_VS_REQUESTS:g}x the requests loop: "
            f"{ours:,.0f} vs {theirs:,.0f} = {ours / theirs:.2f}x",
        )
    )
    ours, theirs = res.startup.get("ostream"), res.startup.get("requests loop")
    lines.append(
        ("SKIP", "startup of ostream or the requests loop not measured")
        if ours is None or theirs is None
        else (
            "PASS" if ours <= GOAL_STARTUP_VS_REQUESTS * theirs else "FAIL",
            f"spawn->request <= {GOAL_STARTUP_VS_REQUESTS:g}x the requests-loop script: "
            f"{ours:.1f} ms vs {theirs:.1f} ms = {ours / theirs:.2f}x",
        )
    )
    small, big = res.rss_small.get("ostream"), res.rss_big.get("ostream")
    lines.append(
        ("SKIP", "peak RSS at the big size not measured (--quick?)")
        if small is None or big is None
        else (
            "PASS" if big <= GOAL_RSS_GROWTH * small else "FAIL",
            f"peak RSS at 2M <= {GOAL_RSS_GROWTH:g}x RSS at 20k (ostream text): "
            f"{big / 1024:.1f} MB vs {small / 1024:.1f} MB = {big / small:.2f}x",
        )
    )
    if res.light:
        heavy = [k for k, ok in res.light.items() if not ok]
        lines.append(
            (
                "FAIL" if heavy else "PASS",
                "--version and --help do not import requests"
                + (f": {', '.join(heavy)} does" if heavy else f" ({', '.join(res.light)} checked)"),
            )
        )
    for verdict, text in lines:
        print(f"{verdict:<5} {text}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/bench.py",
        description="Measure ostream against curl, curl|jq, the ollama client and a requests "
        "loop, in one interleaved run against the in-process fake Ollama server.",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer rounds, no 2M")
    parser.add_argument(
        "--rounds",
        type=int,
        metavar="N",
        help="latency rounds (default 5; --quick 1)",
    )
    parser.add_argument(
        "--runs", type=int, metavar="N", help="throughput runs (default 3; --quick 1)"
    )
    parser.add_argument(
        "--startup-rounds", type=int, metavar="N", help="startup rounds (default 15; --quick 5)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"measurements to run, repeatable or comma-separated: {', '.join(MEASUREMENTS)}",
    )
    parser.add_argument(
        "--peers",
        metavar="NAMES",
        help="comma-separated peer names to run (ostream is always included)",
    )
    parser.add_argument(
        "--chunks",
        type=int,
        metavar="N",
        help="throughput stream length (default 200000; --quick 50000)",
    )
    parser.add_argument(
        "--big",
        type=int,
        metavar="N",
        help="big memory stream length (default 2000000; 0 skips it)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    runs = args.runs or (1 if args.quick else 3)
    startup_rounds = args.startup_rounds or (5 if args.quick else 15)
    chunks = args.chunks or (50_000 if args.quick else 200_000)
    big: int | None = 2_000_000 if args.big is None else args.big
    if args.quick and args.big is None:
        big = None
    if big == 0:
        big = None
    only = {m.strip() for spec in args.only or [] for m in spec.split(",") if m.strip()}
    unknown = only - set(MEASUREMENTS)
    if unknown:
        print(f"bench: unknown measurement(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    selected = [m for m in MEASUREMENTS if not only or m in only]

    peers: list[Peer] = []
    skipped: list[str] = []
    wanted = {n.strip() for n in (args.peers or "").split(",") if n.strip()}
    for peer in all_peers():
        if wanted and peer.name != "ostream" and peer.name not in wanted:
            continue
        reason = missing_reason(peer)
        if reason:
            skipped.append(f"{peer.name}: {reason}")
        else:
            peers.append(peer)
    streaming = [p for p in peers if p.name != "ostream (script)"]
    launchers = [
        p
        for p in peers
        if p.name in ("ostream", "ostream (script)", "requests loop", "ollama client", "curl")
    ]

    started = time.monotonic()
    print("# ostream benchmark")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    print(
        f"python {platform.python_version()} ({sys.executable}), {os.cpu_count()} cores, "
        f"load {load[0]:.2f}, {'quick' if args.quick else 'full'} run"
    )
    for note in skipped:
        print(f"skipped peer: {note}")
    sys.stdout.flush()

    # A short switch interval keeps the server thread from delaying the pipe reader's wake-up.
    sys.setswitchinterval(0.0005)
    res = Results()
    runner: Runner | None = None
    try:
        with FakeOllama(idle_timeout=5) as server:
            runner = Runner(server, child_env())
            log("warming up (page cache, .pyc files)")
            for peer in peers:
                job = Job(server.url, "paced", {"fake_tokens": 2, "fake_delay": 0})
                runner.run(peer.name, peer.argv(job), timeout=30)
            if "latency" in selected:
                measure_latency(runner, streaming, rounds, res)
            if "throughput" in selected:
                measure_throughput(runner, streaming, runs, chunks, res)
            if "startup" in selected:
                measure_startup(runner, launchers, startup_rounds, res)
            if "memory" in selected:
                measure_memory(runner, streaming, 20_000, big, res)
    except KeyboardInterrupt:
        if runner is not None:
            runner.kill_live()
        print("\nbench: interrupted", file=sys.stderr)
        return 130
    goals(res)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Measure ostream side by side with its peers, in one run, against the fake Ollama server.

    .venv/bin/python bench/bench.py            # the full run
    .venv/bin/python bench/bench.py --quick    # a smoke run

Every client is a separate process that reads from the in-process fake server and writes
to a pipe this script drains (os.read in a select loop, timestamps from time.monotonic()).
Every measurement has one shape: cases run in interleaved rounds (the order rotated each
round), then one table of each row's figures and their ratio to ostream (text mode),
because absolute numbers on a shared machine mean little. The goals are checked from the
same tables at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for path in (str(ROOT), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)

from peers import Job, Peer, all_peers, child_env, console_script, missing_reason, ostream_args  # noqa: E402

from ostream.testing import BURST_BATCH, FakeOllama, Recorded  # noqa: E402

MEASUREMENTS = ("latency", "throughput", "startup", "memory")
REFERENCE = "ostream"
STREAMING = ("ostream", "ostream --jsonl", "curl", "curl | jq", "ollama client", "requests loop")
LAUNCHERS = ("ostream", "ostream (script)", "curl", "ollama client", "requests loop")
BIG_PEERS = ("ostream", "ostream --jsonl", "requests loop")
LATENCY_TOKENS, LATENCY_DELAY = 80, 0.005
DRAIN_PAUSE = 0.001  # seconds between reads of a client's output, except for latency


@dataclass
class Sizes:
    rounds: int = 5  # latency rounds
    runs: int = 3  # throughput rounds
    startup_rounds: int = 15
    chunks: int = 300_000  # throughput stream
    batch: int = BURST_BATCH  # lines per HTTP chunk in the second throughput table
    small: int = 20_000  # memory
    big: int = 2_000_000  # memory; 0: skipped


def size_label(n: int) -> str:
    for unit, div in (("M", 1_000_000), ("k", 1000)):
        if n >= div and n % (div // 10) == 0:
            return f"{n / div:g}{unit}"
    return f"{n:,}"


def framing_label(per_chunk: int) -> str:
    if per_chunk == 1:
        return "Ollama's framing, 1 line per HTTP chunk"
    return f"{per_chunk} lines per HTTP chunk, not what Ollama sends"


# --------------------------------------------------------------------------- running a client


@dataclass
class Run:
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

    @property
    def wall(self) -> float:
        """Request arrival at the server -> EOF on the client's stdout."""
        assert self.request is not None and self.eof_at is not None
        return self.eof_at - self.request.received_at


class Runner:
    def __init__(self, server: FakeOllama, env: dict[str, str]) -> None:
        self.server = server
        self.env = env
        self.live: subprocess.Popen[bytes] | None = None
        self.gnu_time = gnu_time()

    def run(
        self,
        argv: list[str],
        *,
        timeout: float = 30,
        mark: bytes | None = None,
        expect_request: bool = True,
        peak_rss: bool = False,
    ) -> Run:
        """Spawn `argv`, drain its stdout until EOF, reap it; kill its group on timeout.

        `mark`: record the arrival time of every occurrence of these bytes in the output.
        `peak_rss`: run it under GNU time for a true peak RSS (see `gnu_time`).
        """
        before = len(self.server.requests)
        seen = bytearray()
        with tempfile.TemporaryFile() as errfile, tempfile.NamedTemporaryFile() as rssfile:
            if peak_rss and self.gnu_time:
                argv = [self.gnu_time, "-f", "%M", "-o", rssfile.name, *argv]
            result = Run(time.monotonic())
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
                result.error = f"cannot start: {exc}"
                return result
            self.live = proc
            assert proc.stdout is not None
            fd = proc.stdout.fileno()
            # Without timestamps to take, read at most every DRAIN_PAUSE (all there is):
            # waking for each of a client's small writes would make the bench, not the
            # client, the limit.
            pause = 0.0 if mark is not None else DRAIN_PAUSE
            with contextlib.suppress(AttributeError, OSError):
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)  # Linux: room for the pauses
            deadline = result.spawn_at + timeout
            try:
                while (remaining := deadline - time.monotonic()) > 0:
                    if not select.select([fd], [], [], remaining)[0]:
                        continue
                    data = os.read(fd, 1 << 20 if pause else 1 << 16)
                    now = time.monotonic()
                    if not data:
                        result.eof_at = now
                        break
                    result.nbytes += len(data)
                    result.newlines += data.count(b"\n")
                    if mark is not None:
                        seen += data
                        result.marks.extend([now] * (seen.count(mark) - len(result.marks)))
                    elif pause:
                        time.sleep(pause)
                else:
                    result.error = f"timed out after {timeout:g}s"
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
        while not (waited := os.wait4(proc.pid, os.WNOHANG))[0]:
            if time.monotonic() > deadline:
                _kill_group(proc.pid)
                waited = os.wait4(proc.pid, 0)
                break
            time.sleep(0.0005)
        _, status, usage = waited
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
        probe = subprocess.run([path, "-f", "%M", "true"], capture_output=True, timeout=10)
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


# --------------------------------------------------------------------------- the one pattern


@dataclass
class Case:
    """One command of a measurement, run once per round: a row of table `table`."""

    table: str
    row: str
    argv: list[str]
    check: Callable[[Run], str] = lambda run: ""  # what is wrong with a finished run
    options: dict[str, Any] = field(default_factory=dict)  # for Runner.run


Runs = dict[str, dict[str, list[Run]]]  # table -> row -> the good runs
Notes = dict[str, list[str]]  # table -> what went wrong in its runs


def interleave(runner: Runner, cases: list[Case], rounds: int, what: str) -> tuple[Runs, Notes]:
    """Run every case once per round, the order rotated each round so that no case always
    runs first or last; the good runs by table and row, and a note for each bad one."""
    runs: Runs = {}
    notes: Notes = {}
    for case in cases:
        runs.setdefault(case.table, {})[case.row] = []
        notes[case.table] = []
    for r in range(rounds):
        log(f"{what}: round {r + 1}/{rounds}")
        k = r % len(cases) if cases else 0
        for case in cases[k:] + cases[:k]:
            run = runner.run(case.argv, **case.options)
            problem = run.error or case.check(run)
            if problem:
                notes[case.table].append(f"{case.row}: round {r + 1}: {problem}")
            else:
                runs[case.table][case.row].append(run)
    return runs, notes


@dataclass(frozen=True)
class Col:
    head: str
    fmt: str = ".3f"
    ratio: bool = False  # also show it as a ratio to the reference row


Values = dict[str, dict[str, float]]  # row -> column head -> figure


def ratio_table(
    title: str,
    columns: list[Col],
    values: Values,
    rows: Sequence[str],
    notes: list[str],
    reference: str = REFERENCE,
) -> None:
    """Print one measurement: each row's figures, and for `ratio` columns the ratio of
    each row to the reference row."""
    headers = ["", *(h for c in columns for h in [c.head, f"x {reference}"][: 1 + c.ratio])]
    cells = []
    ref = values.get(reference, {})
    for row in rows:
        got = values.get(row, {})
        line = [row]
        for col in columns:
            value = got.get(col.head)
            line.append("-" if value is None else format(value, col.fmt))
            if col.ratio:
                base = ref.get(col.head)
                line.append("-" if value is None or not base else f"{value / base:.2f}x")
        cells.append(line)
    widths = [max(len(r[i]) for r in [headers, *cells]) for i in range(len(headers))]

    def fmt(line: Sequence[str]) -> str:
        first = line[0].ljust(widths[0])
        return "  ".join(
            [first, *(c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True))]
        ).rstrip()

    print(f"\n## {title}")
    print(fmt(headers))
    print("  ".join("-" * w for w in widths))
    for line in cells:
        print(fmt(line))
    for note in notes:
        print(f"  note: {note}")
    sys.stdout.flush()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def put(values: Values, row: str, **figures: float | None) -> None:
    values.setdefault(row, {}).update({k: v for k, v in figures.items() if v is not None})


def short_output(peer: Peer, count: int) -> Callable[[Run], str]:
    """The check that a peer wrote all `count` chunks (and the done line)."""

    def check(run: Run) -> str:
        if peer.lines and run.newlines < count + 1:
            return f"short output: {run.newlines:,} lines for {count + 1:,}"
        if not peer.lines and run.nbytes < 4 * count:
            return f"short output: {run.nbytes:,} bytes for {4 * count:,}"
        return ""

    return check


# --------------------------------------------------------------------------- the measurements

Results = dict[str, Values]  # table key -> its figures


def measure_latency(runner: Runner, peers: list[Peer], sizes: Sizes) -> Results:
    job = Job(
        runner.server.url, "paced", {"fake_tokens": LATENCY_TOKENS, "fake_delay": LATENCY_DELAY}
    )
    cases = [
        Case("latency", p.name, p.argv(job), all_tokens, {"mark": b"\n" if p.lines else b"tok"})
        for p in peers
    ]
    runs, all_notes = interleave(runner, cases, sizes.rounds, "latency")
    notes = all_notes["latency"]
    values: Values = {}
    for row, done in runs["latency"].items():
        per_run = [added_ms(run) for run in done]
        every = [ms for added in per_run for ms in added]
        later = [ms for added in per_run for ms in added[1:]]
        if every:
            put(
                values,
                row,
                samples=len(every),
                p50=percentile(every, 50),
                p99=percentile(every, 99),
                max=max(every),
                **{"1st token": median([a[0] for a in per_run])},
                **{"p99 w/o 1st": percentile(later, 99) if later else None},
            )
    notes.insert(
        0,
        f"model paced, {LATENCY_TOKENS} tokens {LATENCY_DELAY * 1e3:g} ms apart, {sizes.rounds} "
        "round(s); per token: server flushed its chunk -> its bytes read from the client's pipe",
    )
    columns = [
        Col("samples", "d"),
        Col("p50", ratio=True),
        Col("p99", ratio=True),
        Col("max"),
        Col("1st token"),
        Col("p99 w/o 1st"),
    ]
    ratio_table(
        "1. added latency per token (ms, lower is better)",
        columns,
        values,
        [p.name for p in peers],
        notes,
    )
    return {"latency": values}


def all_tokens(run: Run) -> str:
    seen = len(run.marks)
    return "" if seen >= LATENCY_TOKENS else f"{seen}/{LATENCY_TOKENS} tokens seen"


def added_ms(run: Run) -> list[float]:
    """Per token: the server flushing its chunk -> its bytes read from the client's stdout."""
    assert run.request is not None
    sent = [t for t, _ in run.request.sent][:LATENCY_TOKENS]
    return [(got - put_at) * 1e3 for got, put_at in zip(run.marks, sent, strict=False)]


def measure_throughput(runner: Runner, peers: list[Peer], sizes: Sizes) -> Results:
    count = sizes.chunks
    framings = {"throughput": 1, "throughput batched": sizes.batch}
    cases = [
        Case(
            table,
            p.name,
            p.argv(
                Job(runner.server.url, "burst", {"fake_tokens": count, "fake_batch": per_chunk})
            ),
            short_output(p, count),
            {"timeout": 300},
        )
        for table, per_chunk in framings.items()
        for p in peers
    ]
    runs, notes = interleave(runner, cases, sizes.runs, f"throughput ({size_label(count)} chunks)")
    results: Results = {}
    columns = [
        Col("chunks/s", ",.0f", ratio=True),
        Col("wall s"),
        Col("CPU s"),
        Col("CPU µs/chunk", ".2f", ratio=True),
    ]
    for n, (table, per_chunk) in enumerate(framings.items()):
        values: Values = {}
        for row, done in runs[table].items():
            if done:
                cpu = statistics.median(run.cpu for run in done)
                put(
                    values,
                    row,
                    **{
                        "chunks/s": statistics.median(count / run.wall for run in done),
                        "wall s": statistics.median(run.wall for run in done),
                        "CPU s": cpu,
                        "CPU µs/chunk": cpu / count * 1e6,
                    },
                )
        table_notes = [
            f"{count:,} generate chunks ({framing_label(per_chunk)}) into a pipe the bench "
            f"drains; median of {sizes.runs}, both tables interleaved in one run; wall = request "
            "arrival -> EOF on stdout; CPU = user+sys of the client, start-up included "
            "(a pipeline: all its processes)",
            *notes[table],
        ]
        title = f"2{'ab'[n]}. throughput, {framing_label(per_chunk)} (higher chunks/s is better)"
        ratio_table(title, columns, values, [p.name for p in peers], table_notes)
        results[table] = values
    return results


def measure_startup(runner: Runner, peers: list[Peer], sizes: Sizes) -> Results:
    py = sys.executable
    job = Job(runner.server.url, "paced", {"fake_tokens": 1, "fake_delay": 0})
    exits: dict[str, list[str]] = {
        "ostream --version": [py, "-m", "ostream", "--version"],
        "ostream --help": [py, "-m", "ostream", "--help"],
        "ostream (script) --version": [str(console_script()), "--version"],
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import requests'": [py, "-c", "import requests"],
        "python -c 'import typer'": [py, "-c", "import typer"],
    }
    if not console_script().exists():
        del exits["ostream (script) --version"]
    cases = [Case("request", p.name, p.argv(job)) for p in peers]
    cases += [
        Case("exit", name, argv, options={"expect_request": False}) for name, argv in exits.items()
    ]
    runs, all_notes = interleave(runner, cases, sizes.startup_rounds, "startup")
    notes = all_notes["request"] + all_notes["exit"]
    to_request: Values = {}
    for row, done in runs["request"].items():
        ms = [(run.request.received_at - run.spawn_at) * 1e3 for run in done if run.request]
        put(to_request, row, median=median(ms), min=min(ms, default=None))
    to_exit: Values = {}
    for row, done in runs["exit"].items():
        ms = [(run.exit_at - run.spawn_at) * 1e3 for run in done if run.exit_at]
        put(
            to_exit,
            row,
            median=median(ms),
            min=min(ms, default=None),
            **{"CPU ms": median([r.cpu * 1e3 for r in done])},
        )
    notes.insert(
        0,
        f"median of {sizes.startup_rounds} rounds, 3a and 3b interleaved; ostream = "
        f"`{Path(py).name} -m ostream generate`, ostream (script) = {console_script()}",
    )
    cols = [Col("median", ".1f", ratio=True), Col("min", ".1f")]
    ratio_table(
        "3a. startup: spawn -> request at the server (ms, lower is better)",
        cols,
        to_request,
        [p.name for p in peers],
        notes,
    )
    ratio_table(
        "3b. startup: spawn -> exit (ms, lower is better)",
        [*cols, Col("CPU ms", ".1f")],
        to_exit,
        list(exits),
        [],
        reference="ostream --version",
    )
    return {"startup": to_request, "exit": to_exit, "imports": import_check(runner, job)}


def import_check(runner: Runner, job: Job) -> Values:
    """Which heavy modules `--version`, `--help` and `generate` import (python -X importtime)."""
    base = [sys.executable, "-X", "importtime", "-m", "ostream"]
    watched = ("requests", "urllib3", "typer", "click", "rich", "prompt_toolkit", "json", "ostream")
    values: Values = {}
    lines: list[str] = []
    for label, args in {
        "--version": ["--version"],
        "--help": ["--help"],
        "generate": ostream_args(job),
    }.items():
        try:
            proc = subprocess.run(
                base + args,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=runner.env,
                cwd=ROOT,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            lines.append(f"{label}: failed: {exc}")
            continue
        modules = re.findall(
            r"import time:\s+(\d+) \|\s+(\d+) \| (.*)$",
            proc.stderr.decode("utf-8", "replace"),
            re.M,
        )
        roots = {name.strip().split(".")[0] for _, _, name in modules}
        put(
            values,
            label,
            modules=len(modules),
            **{
                "import ms": sum(int(s) for s, _, _ in modules) / 1e3,
                "imports requests": float("requests" in roots),
            },
        )
        loaded = " ".join(w for w in watched if w in roots)
        lines.append(f"{label}: exit {proc.returncode}; loads {loaded}")
        if label == "generate":
            tops = sorted(
                ((int(cum), name) for _, cum, name in modules if not name.startswith(" ")),
                reverse=True,
            )[:8]
            lines.append(
                "generate, slowest top-level imports (cumulative ms): "
                + ", ".join(f"{n} {c / 1e3:.1f}" for c, n in tops)
            )
    ratio_table(
        "3c. imports (python -X importtime; import ms inflated by the tracing)",
        [Col("modules", ".0f"), Col("import ms", ".1f"), Col("imports requests", ".0f")],
        values,
        ["--version", "--help", "generate"],
        lines,
        reference="--version",
    )
    return values


def measure_memory(runner: Runner, peers: list[Peer], sizes: Sizes) -> Results:
    counts = {"small": sizes.small, "big": sizes.big}
    cases = [
        Case(
            key,
            p.name,
            p.argv(Job(runner.server.url, "burst", {"fake_tokens": count, "fake_batch": 1})),
            short_output(p, count),
            {"timeout": 600, "peak_rss": True},
        )
        for key, count in counts.items()
        if count
        for p in peers
        if key == "small" or p.name in BIG_PEERS
    ]
    runs, all_notes = interleave(runner, cases, 1, "memory")
    notes = [note for key in counts if key in all_notes for note in all_notes[key]]
    small, big = size_label(sizes.small), size_label(sizes.big) if sizes.big else "big"
    values: Values = {}
    for peer in peers:
        mb = {key: runs.get(key, {}).get(peer.name) for key in counts}
        s = mb["small"][0].maxrss_kb / 1024 if mb["small"] else None
        b = mb["big"][0].maxrss_kb / 1024 if mb["big"] else None
        put(
            values,
            peer.name,
            **{f"{small} MB": s, f"{big} MB": b, f"{big}/{small}": b / s if s and b else None},
        )
    how = (
        f"GNU time's %M ({runner.gnu_time})"
        if runner.gnu_time
        else "os.wait4 ru_maxrss, an UPPER BOUND (the bench's own RSS, inherited through vfork)"
    )
    notes[:0] = [
        f"peak RSS for {sizes.small:,} and {f'{sizes.big:,}' if sizes.big else 'no'} chunks "
        f"({framing_label(1)}), by {how}; a pipeline: its largest process",
        f"only {', '.join(BIG_PEERS)} run the big stream",
    ]
    cols = [
        Col(f"{small} MB", ".1f", ratio=True),
        Col(f"{big} MB", ".1f", ratio=True),
        Col(f"{big}/{small}", ".2f"),
    ]
    ratio_table(
        "4. memory: peak RSS (MB, lower is better)", cols, values, [p.name for p in peers], notes
    )
    return {"memory": values}


# --------------------------------------------------------------------------- goals


@dataclass(frozen=True)
class Goal:
    """`table`/`row`/`column` `op` `bound`; with `against`, the ratio to that row's figure."""

    text: str
    table: str
    row: str
    column: str
    op: str
    bound: float
    against: str | None = None


OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
}


def goals(sizes: Sizes) -> list[Goal]:
    big = size_label(sizes.big) if sizes.big else "big"
    return [
        Goal("added latency p99 (ostream text) <= 1 ms", "latency", "ostream", "p99", "<=", 1.0),
        Goal(
            "Ollama's framing: ostream chunks/s >= 1.3x the requests loop",
            "throughput",
            "ostream",
            "chunks/s",
            ">=",
            1.3,
            "requests loop",
        ),
        Goal(
            "Ollama's framing: ostream CPU per chunk < the requests loop's",
            "throughput",
            "ostream",
            "CPU µs/chunk",
            "<",
            1.0,
            "requests loop",
        ),
        Goal(
            "Ollama's framing: ostream --jsonl chunks/s >= ostream text",
            "throughput",
            "ostream --jsonl",
            "chunks/s",
            ">=",
            1.0,
            "ostream",
        ),
        Goal(
            "spawn -> request <= 1.6x the requests-loop script",
            "startup",
            "ostream",
            "median",
            "<=",
            1.6,
            "requests loop",
        ),
        Goal(
            f"peak RSS at {big} <= 1.25x at {size_label(sizes.small)} (ostream text)",
            "memory",
            "ostream",
            f"{big}/{size_label(sizes.small)}",
            "<=",
            1.25,
        ),
        Goal(
            "--version does not import requests",
            "imports",
            "--version",
            "imports requests",
            "==",
            0,
        ),
        Goal("--help does not import requests", "imports", "--help", "imports requests", "==", 0),
    ]


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def check_goals(results: Results, sizes: Sizes) -> None:
    print("\n## goals")
    for goal in goals(sizes):
        table = results.get(goal.table, {})
        value = table.get(goal.row, {}).get(goal.column)
        base = table.get(goal.against, {}).get(goal.column) if goal.against else 1.0
        if value is None or not base:
            print(f"{'-':<7} {goal.text}: not measured")
            continue
        shown = value / base
        verdict = "met" if OPS[goal.op](shown, goal.bound) else "MISSED"
        detail = (
            f"{number(value)} vs {number(base)} = {shown:.2f}x" if goal.against else number(value)
        )
        print(f"{verdict:<7} {goal.text}: {detail}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Sizes]:
    d = Sizes()
    parser = argparse.ArgumentParser(
        prog="bench/bench.py",
        description="Measure ostream against curl, curl|jq, the ollama client and a requests "
        "loop, in one interleaved run against the in-process fake Ollama server.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 1 round each, 50k chunks, no big memory stream",
    )
    parser.add_argument(
        "--rounds", type=int, metavar="N", help=f"latency rounds (default {d.rounds})"
    )
    parser.add_argument(
        "--runs", type=int, metavar="N", help=f"throughput rounds (default {d.runs})"
    )
    parser.add_argument(
        "--startup-rounds",
        type=int,
        metavar="N",
        help=f"startup rounds (default {d.startup_rounds})",
    )
    parser.add_argument(
        "--chunks", type=int, metavar="N", help=f"throughput stream length (default {d.chunks})"
    )
    parser.add_argument(
        "--batch",
        type=int,
        metavar="N",
        help=f"lines per HTTP chunk in table 2b (default {d.batch})",
    )
    parser.add_argument(
        "--small", type=int, metavar="N", help=f"small memory stream (default {d.small})"
    )
    parser.add_argument(
        "--big", type=int, metavar="N", help=f"big memory stream (default {d.big}; 0 skips it)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"measurements to run, repeatable or comma-separated: {', '.join(MEASUREMENTS)}",
    )
    parser.add_argument(
        "--peers", metavar="NAMES", help="comma-separated peer names (ostream is always run)"
    )
    args = parser.parse_args(argv)
    sizes = Sizes(rounds=1, runs=1, startup_rounds=5, chunks=50_000, big=0) if args.quick else d
    for name in ("rounds", "runs", "startup_rounds", "chunks", "batch", "small", "big"):
        if getattr(args, name) is not None:
            setattr(sizes, name, getattr(args, name))
    return args, sizes


def main(argv: list[str] | None = None) -> int:
    args, sizes = parse_args(argv)
    only = {m.strip() for spec in args.only or [] for m in spec.split(",") if m.strip()}
    if only - set(MEASUREMENTS):
        print(
            f"bench: unknown measurement(s): {', '.join(sorted(only - set(MEASUREMENTS)))}",
            file=sys.stderr,
        )
        return 2
    wanted = {n.strip() for n in (args.peers or "").split(",") if n.strip()} | {REFERENCE}
    peers: list[Peer] = []
    print("# ostream benchmark")
    print(
        f"python {platform.python_version()} ({sys.executable}), {os.cpu_count()} cores, "
        f"load average at the start {loadavg()}; "
        + ", ".join(f"{k} {v:,}" for k, v in vars(sizes).items())
    )
    for peer in all_peers():
        if args.peers and peer.name not in wanted:
            continue
        reason = missing_reason(peer)
        if reason:
            print(f"skipped peer: {peer.name}: {reason}")
        else:
            peers.append(peer)
    sys.stdout.flush()
    measures: dict[str, tuple[Callable[[Runner, list[Peer], Sizes], Results], tuple[str, ...]]] = {
        "latency": (measure_latency, STREAMING),
        "throughput": (measure_throughput, STREAMING),
        "startup": (measure_startup, LAUNCHERS),
        "memory": (measure_memory, STREAMING),
    }
    started = time.monotonic()
    # A short switch interval keeps the server thread from delaying the pipe reader's wake-up.
    sys.setswitchinterval(0.0005)
    results: Results = {}
    runner: Runner | None = None
    try:
        with FakeOllama(idle_timeout=5) as server:
            runner = Runner(server, child_env())
            log("warming up (page cache, .pyc files)")
            for peer in peers:
                runner.run(peer.argv(Job(server.url, "paced", {"fake_tokens": 2, "fake_delay": 0})))
            for name, (measure, names) in measures.items():
                if not only or name in only:
                    results.update(measure(runner, [p for p in peers if p.name in names], sizes))
    except KeyboardInterrupt:
        if runner is not None:
            runner.kill_live()
        print("\nbench: interrupted", file=sys.stderr)
        return 130
    check_goals(results, sizes)
    print(f"\ntotal {time.monotonic() - started:.0f} s; load average at the end {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How an early Ctrl-C ends ostream: SIGINT a few milliseconds after it was started.

    python bench/early_sigint.py [--tries N] [--delays 5,10,15,20,30,50] [--root DIR]

Runs `python -m ostream generate -m stall hi` and the console script next to this
Python (`.venv/bin/ostream`) against the fake server (a model that never answers, so
a signal that arrives after the request started is one ostream handles), sends
SIGINT DELAY ms after the process was started (Popen returned: it has exec'd), and
counts how each run ended: died by SIGINT (what a shell expects of a Ctrl-C; `$?`
130), exit 130, exit 1, anything else, and runs with a Python traceback on stderr
and whose code that traceback's signal landed in: the interpreter's start-up
(sys streams, `site` and its .pth files, runpy for -m), the console script's own
imports (pip writes it: `import re` comes before ostream's entry point), or ostream.

`--root DIR` runs the ostream found in DIR instead (a checkout of another version,
e.g. `git worktree add /tmp/base main`), for a before/after in the same conditions.
Not a test: the figures depend on the machine's load; the interpreter owns the window
from installing its own SIGINT handler to ostream's first statement.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ostream.testing import FakeOllama  # noqa: E402

ARGS = ["generate", "-m", "stall", "-o", "fake_stall=30", "hi"]
OUTCOMES = ("died by SIGINT", "exit 130", "exit 1", "other")


def entry_points() -> dict[str, list[str]]:
    script = Path(sys.executable).with_name("ostream")
    points = {"python -m ostream": [sys.executable, "-m", "ostream"]}
    if script.exists():
        points[".venv/bin/ostream"] = [str(script)]
    return points


def one_run(
    command: list[str], delay: float, env: dict[str, str], root: Path
) -> tuple[str, str | None]:
    """(outcome, whose code a traceback came from, or None)."""
    proc = subprocess.Popen(
        [*command, *ARGS],
        cwd=root,  # `python -m` imports from the working directory first
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # a stray SIGINT must not reach this bench
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "hung", None
    code = proc.returncode
    outcome = {-signal.SIGINT: OUTCOMES[0], 130: OUTCOMES[1], 1: OUTCOMES[2]}.get(
        code, f"status {code}"
    )
    return outcome, _whose(err) if b"Traceback" in err else None


def _whose(err: bytes) -> str:
    """Whose code a traceback's KeyboardInterrupt landed in."""
    frames = [f.decode() for f in re.findall(rb'File "([^"]+)"', err)]
    if any(Path(f).parent.name == "ostream" for f in frames):
        return "ostream"  # after the entry point's first statement: must never happen
    if frames and Path(frames[0]).name == "ostream":
        return "script"  # the console script's own imports (pip writes it), before run()
    return "start-up"  # the interpreter's: its streams, site (.pth files), runpy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=40)
    parser.add_argument("--delays", default="5,10,15,20,30,50", help="milliseconds")
    parser.add_argument("--root", type=Path, default=ROOT, help="where ostream is imported from")
    options = parser.parse_args()
    delays = [int(d) for d in options.delays.split(",")]
    with FakeOllama() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "PYTHON"))}
        env.update(OLLAMA_HOST=server.url, PYTHONPATH=str(options.root.resolve()))
        print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs; root {options.root}")
        print(f"{'entry point':<18} {'ms':>3}  " + "  ".join(f"{o:>14}" for o in OUTCOMES))
        for name, command in entry_points().items():
            for delay in delays:
                counts: collections.Counter[str] = collections.Counter()
                tracebacks: collections.Counter[str] = collections.Counter()
                # Interleave nothing else: each run starts after the last one ended.
                for _ in range(options.tries):
                    outcome, where = one_run(command, delay / 1000, env, options.root)
                    counts[outcome] += 1
                    if where is not None:
                        tracebacks[where] += 1
                others = {o: n for o, n in counts.items() if o not in OUTCOMES}
                counts["other"] = sum(others.values())
                row = "  ".join(f"{counts[o]:>14}" for o in OUTCOMES)
                shown = ", ".join(f"{n} in {f}" for f, n in tracebacks.most_common())
                print(
                    f"{name:<18} {delay:>3}  {row}   traceback: {sum(tracebacks.values())}"
                    + (f" ({shown})" if shown else "")
                    + "".join(f"; {o}: {n}" for o, n in others.items()),
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory of `ostream batch`'s input side, without HTTP: RSS at 10k / 100k / 1M jobs.

    python bench/batch_memory.py [SIZES...]      # default: 10000 100000 1000000

Each size runs in a fresh process (ru_maxrss is a high-water mark). The process
first writes an --output file in which every other job already succeeded, then
does what a run does before and while dispatching: open_output (scan, repair,
collect the successful ids), then every synthetic input line through JobReader
(JSON parse, defaults, duplicate check, resume skip), dropping each job as a
scheduler would once sent. The input is generated as it is read, never held.
Also shown: what the same ids would cost in a Python set of ints. The goal
(issue 11): under 200 MB at 1,000,000 jobs.
"""

from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ostream.batch.ids import id_hash
from ostream.batch.jobs import Defaults, JobReader
from ostream.batch.results import success_line
from ostream.batch.writer import open_output

SIZES = (10_000, 100_000, 1_000_000)
LIMIT_MB = 200


def input_lines(count: int) -> Iterator[bytes]:
    """Job lines of the three shapes, about 1 in 1000 a duplicate id."""
    for n in range(count):
        custom_id = f"req-{n - 1 if n % 1000 == 999 else n}"
        if n % 3 == 0:
            obj = {
                "custom_id": custom_id,
                "method": "POST",
                "url": "/api/chat",
                "body": {"messages": [{"role": "user", "content": f"question {n}"}]},
            }
        elif n % 3 == 1:
            obj = {"custom_id": custom_id, "prompt": f"Summarise item {n} in one line."}
        else:
            obj = {
                "custom_id": custom_id,
                "url": "/api/generate",
                "body": {"prompt": f"prompt {n}", "options": {"seed": n}},
            }
        yield json.dumps(obj).encode() + b"\n"


class Generated(io.RawIOBase):
    """A binary file whose bytes are made as they are read."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        self._lines = lines
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while len(self._pending) < len(buffer):
            line = next(self._lines, None)
            if line is None:
                break
            self._pending += line
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "out.jsonl"
        with output.open("wb") as file:  # every other job already done
            body = {"model": "m", "response": "an answer", "done": True}
            for n in range(0, count, 2):
                file.write(success_line(f"req-{n}", 200, body, host="h", attempts=1))
        before = rss_mb()
        started = time.process_time()
        writer, resume = open_output(str(output))
        scanned = time.process_time()
        reader = JobReader(
            io.BufferedReader(Generated(input_lines(count)), 1 << 16),
            defaults=Defaults(model="m", system="Be brief.", options={"temperature": 0}),
            done=resume.done,
        )
        runnable = invalid = 0
        for job in reader:
            if job.error is None:
                runnable += 1
            else:
                invalid += 1
        ended = time.process_time()
        writer.close()
    return {
        "jobs": count,
        "rss_before_mb": before,
        "peak_rss_mb": rss_mb(),
        "idset_mb": (reader.seen.nbytes + resume.done.nbytes) / 2**20,
        "scan_cpu_s": scanned - started,
        "read_cpu_s": ended - scanned,
        "us_per_line": (ended - scanned) / count * 1e6,
        "runnable": runnable,
        "invalid": invalid,
        "skipped": reader.skipped,
    }


def builtin_set(count: int) -> dict[str, float]:
    before = rss_mb()
    ids = {id_hash(f"req-{n}") for n in range(count)}
    return {"jobs": len(ids), "rss_before_mb": before, "peak_rss_mb": rss_mb()}


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] in ("--one", "--set"):
        result = (measure if sys.argv[1] == "--one" else builtin_set)(int(sys.argv[2]))
        print(json.dumps(result))
        return 0
    sizes = [int(a) for a in sys.argv[1:]] or list(SIZES)
    print(
        f"{'jobs':>10} {'peak RSS':>9} {'base':>6} {'id sets':>8} {'scan cpu':>8} "
        f"{'read cpu':>8} {'cpu us/line':>11} {'skipped':>8} {'invalid':>7} | {'set() of ints':>14}"
    )
    failed = False
    for count in sizes:
        runs = {}
        for mode in ("--one", "--set"):
            out = subprocess.run(
                [sys.executable, __file__, mode, str(count)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[mode] = json.loads(out.stdout)
        r, s = runs["--one"], runs["--set"]
        failed |= r["peak_rss_mb"] >= LIMIT_MB
        print(
            f"{count:>10,} {r['peak_rss_mb']:>7.1f}MB {r['rss_before_mb']:>4.0f}MB "
            f"{r['idset_mb']:>6.1f}MB {r['scan_cpu_s']:>7.2f}s {r['read_cpu_s']:>7.2f}s "
            f"{r['us_per_line']:>11.1f} {r['skipped']:>8,} {r['invalid']:>7,} | "
            f"{s['peak_rss_mb'] - s['rss_before_mb']:>+12.1f}MB"
        )
    print(
        f"goal: peak RSS under {LIMIT_MB} MB at 1,000,000 jobs: " + ("NOT MET" if failed else "met")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

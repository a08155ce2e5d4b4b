"""`ostream batch` on the fleet simulator, next to its peers and the ideal makespan.

    .venv/bin/python bench/batch.py                 # every scenario, a few minutes
    .venv/bin/python bench/batch.py --only a,e      # some of them
    .venv/bin/python bench/batch.py --peer-jobs 60  # jobs given to the process-per-prompt peers

Scenarios (issue 11): (a) 4 equal hosts x 1 slot, 400 jobs of 20-200 tokens;
(b) the same, one host 3x slower; (c) 2 models on 4 hosts, each loaded on 2,
swap (load) cost 5 s; (d) one host dies at 30 % of the ideal run; (e) 10,000
tiny jobs on a server that answers at once, 8 slots; (f) memory, from
bench/batch_memory.py.

The ideal makespan comes from the simulator's own service times: each job's
reply length is fixed by `num_predict` (the simulated replies are longer), so
its time is prompt tokens / prompt_rate + reply tokens / token_rate on a host
of speed 1. Ideal = the work divided by the capacity (slots x speed), or the
longest job, whichever is larger; per model in (c) (a model runs only where it
is loaded); in (d) the capacity drops at the moment the host dies.

The servers run in a child process (this file with --serve), every client in its
own process; wall time is measured around the client, CPU from its rusage.
Peers: an asyncio script with the official `ollama` client pulling from one
shared queue across the hosts (skipped if `import ollama` fails: `pip install
ollama` into the venv, never a dependency), `xargs -P` and GNU `parallel`
running `ostream generate` once per prompt with hosts assigned by slot (the
first --peer-jobs jobs only: one process per prompt is slow; their ideal is
computed for those jobs). Not a test: nothing here fails CI.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ostream.testing.replies import tokenize  # noqa: E402

PROMPT_RATE = 20000.0
TOKEN_RATE = 400.0  # per slot: 400 jobs of 20-200 tokens on 4 slots take about 27 s

PEER_OLLAMA = r"""
import asyncio, json, sys
import ollama

async def main():
    hosts, path = sys.argv[1].split(","), sys.argv[2]
    slots = int(sys.argv[3])
    queue = asyncio.Queue()
    for line in open(path):
        queue.put_nowait(json.loads(line))
    out = open(sys.argv[4], "w")

    async def worker(host):
        client = ollama.AsyncClient(host=host)
        while True:
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            text = []
            async for part in await client.generate(
                model=job["model"], prompt=job["prompt"], options=job.get("options"), stream=True
            ):
                text.append(part["response"])
            out.write(json.dumps({"custom_id": job["custom_id"], "response": "".join(text)}) + "\n")

    await asyncio.gather(*(worker(h) for h in hosts for _ in range(slots)))

asyncio.run(main())
"""

# One `ostream generate` per prompt: `sh one.sh SLOT LINE`, a line being MODEL, LEN
# (num_predict) and PROMPT, tab-separated; the slot number picks the host (static
# assignment, as users write it: xargs --process-slot-var, parallel's {%}).
PER_PROMPT = r"""
slot=$1
IFS="$(printf '\t')" read -r MODEL LEN PROMPT <<EOF
$2
EOF
set -- $HOSTS
i=$(( slot % $# + 1 )); eval host=\${$i}
exec "$OSTREAM" generate --host "$host" -m "$MODEL" -o num_predict="$LEN" "$PROMPT" > /dev/null
"""


@dataclass
class Scenario:
    name: str
    title: str
    sims: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    parallel: int = 1
    die: tuple[int, float] | None = None  # host index, fraction of the ideal
    goal: float = 1.10
    speeds: list[float] = field(default_factory=list)
    plain: bool = False  # (e): a plain fake that answers at once


def service(job: dict[str, Any]) -> float:
    prompt = max(len(tokenize(job["prompt"])), 1)
    return prompt / PROMPT_RATE + job["options"]["num_predict"] / TOKEN_RATE


def ideal(s: Scenario, jobs: list[dict[str, Any]]) -> float:
    speeds = s.speeds or [1.0] * len(s.sims)
    by_model: dict[str, float] = {}
    for job in jobs:
        by_model[job["model"]] = by_model.get(job["model"], 0.0) + service(job)
    longest = max(service(j) for j in jobs) / max(speeds)
    spans = []
    for model, work in by_model.items():
        hosts = [
            i for i, sim in enumerate(s.sims) if model in sim.get("loaded", sim.get("models", []))
        ] or list(range(len(s.sims)))
        capacity = sum(speeds[i] * s.parallel for i in hosts)
        if s.die is not None:
            dead, fraction = s.die
            full = work / capacity
            at = fraction * full
            left = capacity - (speeds[dead] * s.parallel if dead in hosts else 0.0)
            spans.append(at + (work - at * capacity) / left)
        else:
            spans.append(work / capacity)
    return max(max(spans), longest)


def make_jobs(n: int, models: list[str], low: int, high: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "custom_id": f"job-{i}",
            "model": models[rng.randrange(len(models))],
            "prompt": f"Question number {i}: why?",
            "options": {"num_predict": rng.randint(low, high)},
        }
        for i in range(n)
    ]


def scenarios(peer_jobs: int) -> list[Scenario]:
    sim = {"token_rate": TOKEN_RATE, "prompt_rate": PROMPT_RATE, "reply_tokens": [400, 400]}
    jobs = make_jobs(400, ["llama3.1"], 20, 200, 1)
    two = make_jobs(400, ["a", "b"], 20, 200, 2)
    return [
        Scenario("a", "4 equal hosts x 1 slot, 400 jobs", [sim] * 4, jobs),
        Scenario(
            "b",
            "one host 3x slower",
            [sim] * 3 + [{**sim, "slow": 3.0}],
            jobs,
            speeds=[1, 1, 1, 1 / 3],
        ),
        Scenario(
            "c",
            "2 models on 4 hosts, each loaded on 2, swap 5 s",
            [
                {**sim, "models": ["a", "b"], "loaded": [m], "load_time": 5.0}
                for m in ("a", "a", "b", "b")
            ],
            two,
            goal=1.15,
        ),
        Scenario("d", "one host dies at 30 %", [sim] * 4, jobs, die=(0, 0.3), goal=1.3),
        Scenario(
            "e",
            "10,000 tiny jobs, instant server, 8 slots",
            [{}],
            make_jobs(10_000, ["llama3.1"], 1, 1, 3),
            parallel=8,
            plain=True,
        ),
    ]


# ---------------------------------------------------------------------------- the servers


def serve(spec: dict[str, Any]) -> None:
    """Child process: start the servers, print their URLs, wait for "go" (then schedule
    the death), then for EOF; print the counters as JSON and exit."""
    from dataclasses import asdict

    from ostream.testing import FakeOllama, Fleet, Sim

    if spec["plain"]:
        servers: Any = FakeOllama().start()
        urls, counters = [servers.url], lambda: {}
    else:
        sims = []
        for raw in spec["sims"]:
            raw = dict(raw)
            raw.pop("slow", None)
            for key in ("models", "loaded", "reply_tokens"):
                if key in raw:
                    raw[key] = tuple(raw[key])
            sims.append(Sim(parallel=spec["parallel"], max_queue=100000, **raw))
        servers = Fleet(sims).start()
        for i, raw in enumerate(spec["sims"]):
            if raw.get("slow"):
                servers[i].slow_down(raw["slow"])
        urls = servers.urls

        def counters() -> dict[str, Any]:
            c = asdict(servers.counters())
            c.pop("busy", None)
            return c

    print("\n".join(urls), flush=True)
    sys.stdin.readline()  # "go"
    if spec.get("die"):
        index, at = spec["die"]
        servers[index].die(at=at)
    sys.stdin.read()
    print(json.dumps(counters()), flush=True)
    os._exit(0)


class Servers:
    def __init__(self, s: Scenario, die_at: float | None) -> None:
        spec = {
            "sims": s.sims,
            "parallel": s.parallel,
            "plain": s.plain,
            "die": [s.die[0], die_at] if s.die is not None and die_at is not None else None,
        }
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.urls = [self.proc.stdout.readline().strip() for _ in range(len(s.sims))]

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def stop(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        line = self.proc.stdout.readline()
        self.proc.wait(30)
        return json.loads(line) if line.strip() else {}


# ---------------------------------------------------------------------------- the clients


@dataclass
class Result:
    wall: float
    cpu: float
    jobs: int
    answered: int
    once: bool
    counters: dict[str, Any]


def timed(args: list[str], env: dict[str, str], **kw: Any) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(args, env=env, **kw)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "OSTREAM_"))}
    return {**keep, "PYTHONPATH": str(ROOT)}


def run_ostream(
    s: Scenario, jobs: list[dict[str, Any]], work: Path, die_at: float | None
) -> Result:
    path, out = work / "jobs.jsonl", work / "out.jsonl"
    path.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    out.unlink(missing_ok=True)
    servers = Servers(s, die_at)
    args = [sys.executable, "-m", "ostream", "batch", "-q", "--parallel", str(s.parallel)]
    for url in servers.urls:
        args += ["--host", url]
    servers.go()
    wall, cpu, _ = timed([*args, "--output", str(out), str(path)], env(), stdin=subprocess.DEVNULL)
    counters = servers.stop()
    records = [json.loads(line) for line in out.read_bytes().splitlines()]
    ok = [r["custom_id"] for r in records if r["error"] is None]
    once = len(records) == len(jobs) and len(set(ok)) == len(ok) == len(jobs)
    return Result(wall, cpu, len(jobs), len(ok), once, counters)


def run_ollama(s: Scenario, jobs: list[dict[str, Any]], work: Path) -> Result | None:
    try:
        import ollama  # noqa: F401
    except ImportError:
        return None
    path, out = work / "jobs.jsonl", work / "peer.jsonl"
    path.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    servers = Servers(s, None)
    servers.go()
    wall, cpu, code = timed(
        [
            sys.executable,
            "-c",
            PEER_OLLAMA,
            ",".join(servers.urls),
            str(path),
            str(s.parallel),
            str(out),
        ],
        env(),
        stdin=subprocess.DEVNULL,
    )
    counters = servers.stop()
    answered = len(out.read_bytes().splitlines()) if out.exists() else 0
    return Result(wall, cpu, len(jobs), answered, code == 0 and answered == len(jobs), counters)


def run_per_prompt(tool: str, s: Scenario, jobs: list[dict[str, Any]], work: Path) -> Result | None:
    if shutil.which(tool) is None:
        return None
    script = work / "one.sh"
    script.write_text(PER_PROMPT)
    table = work / "prompts.tsv"
    table.write_text(
        "".join(f"{j['model']}\t{j['options']['num_predict']}\t{j['prompt']}\n" for j in jobs)
    )
    servers = Servers(s, None)
    slots = len(servers.urls) * s.parallel
    e = {
        **env(),
        "HOSTS": " ".join(servers.urls),
        "OSTREAM": str(Path(sys.executable).parent / "ostream"),
    }
    if tool == "xargs":
        args = [
            "xargs",
            "-d",
            "\n",
            f"-P{slots}",
            "-n1",
            "--process-slot-var=SLOT",
            "sh",
            "-c",
            f'exec sh {script} "$SLOT" "$1"',
            "_",
        ]
    else:
        args = ["parallel", f"-j{slots}", "sh", str(script), "{%}", "{}"]
    servers.go()
    with table.open("rb") as stdin:
        wall, cpu, code = timed(args, e, stdin=stdin)
    counters = servers.stop()
    served = counters.get("served", len(jobs) if code == 0 else 0)
    return Result(wall, cpu, len(jobs), served, code == 0, counters)


# ---------------------------------------------------------------------------- the report


def row(name: str, r: Result | None, best: float, note: str = "") -> str:
    if r is None:
        return f"| {name} | not installed | | | | |"
    rate = r.jobs / r.wall if r.wall else 0.0
    return (
        f"| {name} | {r.wall:.2f} s | {r.wall / best:.2f}x | {rate:,.0f} | "
        f"{r.cpu / r.jobs * 1000:.2f} ms | {r.answered}/{r.jobs}{note} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve")
    parser.add_argument("--only", default="a,b,c,d,e,f")
    parser.add_argument("--peer-jobs", type=int, default=60)
    parser.add_argument("--no-peers", action="store_true")
    opts = parser.parse_args()
    if opts.serve:
        serve(json.loads(opts.serve))
        return
    only = set(opts.only.split(","))
    print(
        f"# ostream batch on the simulator ({os.cpu_count()} cores, token rate "
        f"{TOKEN_RATE:g}/s a slot)\n"
    )
    goals: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for s in scenarios(opts.peer_jobs):
            if s.name not in only:
                continue
            print(f"## ({s.name}) {s.title}\n", flush=True)
            print("| client | wall | / ideal | jobs/s | CPU/job | answered |")
            print("| --- | --- | --- | --- | --- | --- |")
            best = 0.0 if s.plain else ideal(s, s.jobs)
            die_at = (
                s.die[1] * ideal(Scenario(**{**s.__dict__, "die": None}), s.jobs) if s.die else None
            )
            mine = run_ostream(s, s.jobs, work, die_at)
            if s.plain:
                print(row("ostream batch", mine, mine.wall), flush=True)
            else:
                print(f"| ideal | {best:.2f} s | 1.00x | | | |")
                print(
                    row("ostream batch", mine, best, f", swaps {mine.counters.get('swaps', 0)}"),
                    flush=True,
                )
            if not opts.no_peers and s.name in ("a", "b", "e"):
                peer = run_ollama(s, s.jobs, work)
                print(row("asyncio ollama client, one queue", peer, best or mine.wall), flush=True)
                few = s.jobs[: opts.peer_jobs if not s.plain else opts.peer_jobs * 4]
                few_ideal = ideal(s, few) if not s.plain else 0.0
                for tool in ("xargs", "parallel"):
                    r = run_per_prompt(tool, s, few, work)
                    flag = "-P" if tool == "xargs" else "-j"
                    label = f"{tool} {flag} ostream generate (first {len(few)} jobs)"
                    if r is None or s.plain:
                        print(row(label, r, (r.wall if r else 1.0)), flush=True)
                    else:
                        print(row(label, r, few_ideal, f", ideal {few_ideal:.2f} s"), flush=True)
                    if s.plain and r is not None:
                        ratio = (mine.jobs / mine.wall) / (r.jobs / r.wall)
                        goals.append(
                            f"(e) jobs/s vs {tool} -P8 ostream generate: {ratio:.1f}x "
                            f"(goal >= 10x) {'met' if ratio >= 10 else 'NOT met'}"
                        )
                if s.plain and peer is not None:
                    ratio = (mine.jobs / mine.wall) / (peer.jobs / peer.wall)
                    goals.append(
                        f"(e) jobs/s vs asyncio ollama: {ratio:.2f}x (goal >= 1) "
                        f"{'met' if ratio >= 1 else 'NOT met'}; CPU/job "
                        f"{mine.cpu / mine.jobs * 1000:.2f} ms vs "
                        f"{peer.cpu / peer.jobs * 1000:.2f} ms"
                    )
            if not s.plain:
                ratio = mine.wall / best
                swaps = mine.counters.get("swaps", 0)
                ok = ratio <= s.goal and mine.once and (s.name != "c" or swaps == 0)
                extra = f", swaps {swaps}" if s.name == "c" else ""
                extra += ", every job answered once" if mine.once else ", NOT every job once"
                goals.append(
                    f"({s.name}) {ratio:.2f}x ideal (goal <= {s.goal:.2f}x){extra}: "
                    f"{'met' if ok else 'NOT met'}"
                )
            print()
        if "f" in only:
            print("## (f) memory (bench/batch_memory.py)\n\n```", flush=True)
            out = subprocess.run(
                [sys.executable, str(ROOT / "bench" / "batch_memory.py")],
                capture_output=True,
                text=True,
                env=env(),
            )
            print(out.stdout.rstrip() + "\n```\n")
            goals.append("(f) see the memory table (goal: under 200 MB at 1,000,000 jobs)")
    print("## Goals\n")
    for goal in goals:
        print(f"- {goal}")


if __name__ == "__main__":
    main()

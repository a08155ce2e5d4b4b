"""ostream batch as a real process: signals, SIGKILL and resume, shards, a closed stdout."""

from __future__ import annotations

import json
import os
import pty
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ostream.testing import Fleet, Sim
from tests.proc import (
    LEAVE,
    assert_quiet_stderr,
    dead_pipe,
    drain_pty,
    env_for,
    run,
    spawn,
    wait_until_cancellable,
)


def write_jobs(path: Path, n: int) -> list[str]:
    ids = [f"job-{i}" for i in range(n)]
    path.write_text("".join(json.dumps({"custom_id": c, "prompt": f"p {c}"}) + "\n" for c in ids))
    return ids


def env_hosts(fleet: Fleet) -> dict[str, str]:
    return env_for("", OSTREAM_HOSTS=",".join(fleet.urls))


def successes(path: Path) -> Counter[str]:
    records = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert all(r["error"] is None for r in records)
    return Counter(r["custom_id"] for r in records)


def in_flight(fleet: Fleet) -> list[Any]:
    return [
        r for s in fleet for r in s.requests if r.path == "/api/generate" and not r.left.is_set()
    ]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_closes_every_request_at_once_and_a_rerun_continues(
    fake_fleet: Any, tmp_path: Path, signum: int
) -> None:
    fleet: Fleet = fake_fleet(2, Sim(parallel=2, token_rate=40, reply_tokens=(200, 200)))
    jobs, out = tmp_path / "jobs.jsonl", tmp_path / "out.jsonl"
    ids = write_jobs(jobs, 6)
    proc = spawn(
        ["batch", "-m", "llama3.1", "--parallel", "2", "--output", str(out), str(jobs)],
        "",
        env=env_hosts(fleet),
    )
    wait_until_cancellable(proc)
    for server in fleet:
        server.wait_for_requests(3)  # /api/tags, /api/ps, then generations
    deadline = time.monotonic() + 30
    while len(in_flight(fleet)) < 4:
        assert time.monotonic() < deadline, "the batch never had 4 requests in flight"
        time.sleep(0.02)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == -signum  # ended by the signal itself ($? 130 / 143)
    assert_quiet_stderr(stderr)
    for request in [r for s in fleet for r in s.requests if r.path == "/api/generate"]:
        assert request.left.wait(LEAVE)
    assert out.read_bytes() == b""  # nothing had finished
    fleet_fast = [s.sim for s in fleet]
    for sim in fleet_fast:
        assert sim is not None
        sim.slow_down(0.01)
    rerun = run(
        ["batch", "-m", "llama3.1", "--output", str(out), str(jobs)],
        "",
        env=env_hosts(fleet),
        timeout=60,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert successes(out) == Counter(ids)


def test_sigkill_at_random_moments_then_a_rerun_gives_every_job_once(
    fake_fleet: Any, tmp_path: Path
) -> None:
    fleet: Fleet = fake_fleet(3, Sim(parallel=2, token_rate=1500, reply_tokens=(10, 40)))
    jobs, out = tmp_path / "jobs.jsonl", tmp_path / "out.jsonl"
    ids = write_jobs(jobs, 500)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    args = ["batch", "-m", "llama3.1", "--parallel", "2", "-q", "--output", str(out), str(jobs)]
    for _ in range(5):
        proc = spawn(args, "", env=env_hosts(fleet), stdout=subprocess.DEVNULL)
        wait_until_cancellable(proc)
        time.sleep(rng.uniform(0.0, 0.8))
        proc.kill()
        proc.wait(timeout=30)
    final = run(args, "", env=env_hosts(fleet), timeout=120)
    assert final.returncode == 0, (seed, final.stderr)
    assert successes(out) == Counter(ids), seed


def test_shard_processes_cover_every_job_once(fake_fleet: Any, tmp_path: Path) -> None:
    fleet: Fleet = fake_fleet(2, Sim(parallel=2, token_rate=20000, reply_tokens=(5, 10)))
    jobs = tmp_path / "jobs.jsonl"
    ids = write_jobs(jobs, 120)
    outs = [tmp_path / f"out-{i}.jsonl" for i in range(3)]
    procs = [
        spawn(
            ["batch", "-m", "llama3.1", "-q", "--shard", f"{i}/3", "--output", str(o), str(jobs)],
            "",
            env=env_hosts(fleet),
        )
        for i, o in enumerate(outs)
    ]
    for proc in procs:
        proc.communicate(timeout=120)
        assert proc.returncode == 0
    shares = [successes(o) for o in outs]
    assert all(shares)  # each shard got some
    assert not (set(shares[0]) & set(shares[1])) and not (set(shares[1]) & set(shares[2]))
    assert not (set(shares[0]) & set(shares[2]))
    assert sum(shares, Counter()) == Counter(ids)


def test_a_closed_stdout_ends_with_141_silently(fake_fleet: Any, tmp_path: Path) -> None:
    fleet: Fleet = fake_fleet(1, Sim(token_rate=20000, reply_tokens=(5, 10)))
    jobs = tmp_path / "jobs.jsonl"
    write_jobs(jobs, 20)
    result = run(
        ["batch", "-m", "llama3.1", str(jobs)], "", env=env_hosts(fleet), stdout=dead_pipe()
    )
    assert result.returncode == 141
    assert result.stderr == b""


def test_ostream_batch_reads_stdin(fake_fleet: Any) -> None:
    fleet: Fleet = fake_fleet(1, Sim(token_rate=20000, reply_tokens=(5, 10)))
    result = run(
        ["batch", "--text", "-m", "llama3.1", "-q"], "", env=env_hosts(fleet), input=b"one\ntwo\n"
    )
    assert result.returncode == 0
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["custom_id"] for r in out] == ["line-1", "line-2"]


def test_a_terminal_stderr_shows_live_progress_per_host(fake_fleet: Any, tmp_path: Path) -> None:
    fleet: Fleet = fake_fleet(2, Sim(token_rate=200, reply_tokens=(40, 40)))
    jobs = tmp_path / "jobs.jsonl"
    write_jobs(jobs, 8)
    args = ["-m", "llama3.1", "--output", str(tmp_path / "out.jsonl"), str(jobs)]
    status, screen = _on_a_terminal(args, fleet, stdout_too=False)
    text = screen.decode("utf-8", "replace")
    assert status == 0
    assert "1 in flight" in text and "done" in text and "tokens/s" in text
    assert all(url.removeprefix("http://") in text for url in fleet.urls)
    assert screen.count(b"\x1b[?25l") == screen.count(b"\x1b[?25h") == 1  # cursor given back
    assert "batch: 8 succeeded, 0 failed, 0 skipped" in text.splitlines()[-1]


def _on_a_terminal(args: list[str], fleet: Fleet, *, stdout_too: bool) -> tuple[int, bytes]:
    """Run `ostream batch args` with stderr (and stdout) a pty; (status, what it showed)."""
    master, slave = pty.openpty()
    proc = spawn(
        ["batch", *args],
        "",
        env={**env_hosts(fleet), "COLUMNS": "100"},
        stdout=slave if stdout_too else subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    try:
        screen = drain_pty(master)
    finally:
        proc.wait(timeout=60)
    return proc.returncode, screen


def test_results_on_the_terminal_have_no_live_display_drawn_into_them(
    fake_fleet: Any, tmp_path: Path
) -> None:
    fleet: Fleet = fake_fleet(2, Sim(token_rate=200, reply_tokens=(40, 40)))
    jobs = tmp_path / "jobs.jsonl"
    ids = write_jobs(jobs, 8)
    status, screen = _on_a_terminal(["-m", "llama3.1", str(jobs)], fleet, stdout_too=True)
    assert status == 0
    assert b"\x1b" not in screen  # no cursor movement, no frames: the lines as written
    shown = screen.replace(b"\r\n", b"\n").splitlines()
    assert [json.loads(line)["custom_id"] for line in shown[:-1]] == ids
    assert b"batch: 8 succeeded, 0 failed, 0 skipped" in shown[-1]


def test_quiet_shows_no_live_display(fake_fleet: Any, tmp_path: Path) -> None:
    fleet: Fleet = fake_fleet(1, Sim(token_rate=200, reply_tokens=(40, 40)))
    jobs = tmp_path / "jobs.jsonl"
    write_jobs(jobs, 4)
    args = ["-m", "llama3.1", "-q", "--output", str(tmp_path / "out.jsonl"), str(jobs)]
    status, screen = _on_a_terminal(args, fleet, stdout_too=False)
    assert (status, screen) == (0, b"")

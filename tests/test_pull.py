"""`ostream pull MODEL` on every host at once: a line per host in a pipe, the status lines
with --jsonl, progress bars that move on a terminal, Ctrl-C ending every pull, and the
exit status (0 all pulled, 1 a host failed, 3 a host could not be reached)."""

from __future__ import annotations

import io
import json
import os
import pty
import signal
import subprocess
import threading
from typing import Any

import pytest

from ostream.cli import main
from ostream.environment import Environment
from ostream.testing import FakeOllama, Reply, Send, Stall, Wait, ndjson
from tests.proc import (
    LEAVE,
    closed_port,
    drain_pty,
    env_for,
    hosts,
    read_until,
    run,
    spawn,
)

GB = 1_000_000_000
DIGEST = "sha256:6a0746a1ec1aef3e7ec53868f220ff6e389f6f8ef87a01d77c96807de94ca2aa"


def layer(completed: int | None, total: int = 4 * GB) -> dict[str, Any]:
    status: dict[str, Any] = {"status": "pulling 6a0746a1ec1a", "digest": DIGEST, "total": total}
    if completed is not None:
        status["completed"] = completed
    return status


FAILED = "max retries exceeded: unexpected EOF"


def failing_mid_pull() -> Reply:
    return Reply(
        events=[
            Send(ndjson({"status": "pulling manifest"}, layer(GB))),
            Send(ndjson({"error": FAILED})),
        ]
    )


def gated(*steps: tuple[threading.Event | None, dict[str, Any]]) -> Reply:
    """Each status line sent once its event is set (None: at once)."""
    events: list[Any] = []
    for gate, status in steps:
        if gate is not None:
            events.append(Wait(gate, 60))
        events.append(Send(ndjson(status)))
    return Reply(events=events)


def label(url: str) -> str:
    return url.removeprefix("http://")


def test_every_host_pulls_one_line_each_when_done(servers: list[FakeOllama]) -> None:
    a, b = servers
    result = run(["pull", "llama3.1", *hosts(a.url, b.url)], a.url)
    assert (result.returncode, result.stdout) == (0, b"")
    assert sorted(result.stderr.decode().splitlines()) == sorted(
        [f"{label(a.url)}: pulled llama3.1", f"{label(b.url)}: pulled llama3.1"]
    )
    for server in servers:
        [request] = server.requests
        assert (request.method, request.path) == ("POST", "/api/pull")
        assert request.json == {"model": "llama3.1", "stream": True}


def test_a_host_failing_mid_pull_exits_1_with_its_error(servers: list[FakeOllama]) -> None:
    a, b = servers
    b.script(failing_mid_pull(), "/api/pull")
    result = run(["pull", "m", *hosts(a.url, b.url)], a.url)
    assert result.returncode == 1
    *each, summary = result.stderr.decode().splitlines()
    assert sorted(each) == [
        f"{label(a.url)}: pulled m",
        f"ostream: error: {label(b.url)}: {FAILED}",
    ]
    assert summary == "ostream: error: the pull failed on 1 of 2 hosts"


def test_a_host_that_cannot_be_reached_exits_3(servers: list[FakeOllama]) -> None:
    a, b = servers
    b.script(failing_mid_pull(), "/api/pull")
    down = f"http://127.0.0.1:{closed_port()}"
    result = run(["pull", "m", "--retries", "0", *hosts(a.url, down, b.url)], a.url)
    assert result.returncode == 3
    err = result.stderr.decode()
    assert (
        f"ostream: error: cannot connect to {down}: connection refused;"
        " is `ollama serve` running? (--host, OLLAMA_HOST)\n"
    ) in err
    assert f"ostream: error: {label(b.url)}: {FAILED}\n" in err
    assert err.endswith("ostream: error: 1 of 3 hosts could not be reached\n")


def test_a_single_host_failing_says_only_its_error(fake_ollama: FakeOllama) -> None:
    result = run(["pull", "missing"], fake_ollama.url)
    assert result.returncode == 1
    assert result.stderr == b"ostream: error: pull model manifest: file does not exist\n"


def test_a_pull_that_ends_before_success_is_a_failure(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(Reply(events=[Send(ndjson(layer(GB)))]), "/api/pull")
    result = run(["pull", "m"], fake_ollama.url)
    assert result.returncode == 5  # one host: its failure as generate would report it
    assert b'ended before "success"' in result.stderr


def test_jsonl_passes_every_status_line_with_its_host(servers: list[FakeOllama]) -> None:
    a, b = servers
    b.script(failing_mid_pull(), "/api/pull")
    result = run(["pull", "m", "--jsonl", *hosts(a.url, b.url)], a.url)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    of_a = [line for line in lines if line["host"] == a.url]
    of_b = [line for line in lines if line["host"] == b.url]
    assert len(of_a) + len(of_b) == len(lines)
    assert of_a[0]["status"] == "pulling manifest"
    assert of_a[-1] == {"host": a.url, "status": "success"}
    assert of_b == [
        {"host": b.url, "status": "pulling manifest"},
        {"host": b.url, **layer(GB)},
        {"host": b.url, "error": FAILED},
    ]
    assert result.returncode == 1
    assert f"ostream: error: {label(b.url)}: {FAILED}\n".encode() in result.stderr


def test_ctrl_c_closes_every_pull(servers: list[FakeOllama]) -> None:
    a, b = servers
    for server in servers:
        server.script(
            Reply(events=[Send(ndjson({"status": "pulling manifest"}, layer(GB))), Stall(60)]),
            "/api/pull",
        )
    proc = spawn(["pull", "m", "--jsonl", *hosts(a.url, b.url)], a.url)
    assert proc.stdout is not None
    read_until(proc.stdout, lambda d: d.count(b'"completed"') == 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGINT  # ended by the signal itself ($? 130)
    assert err == b""
    for server in servers:
        assert server.requests[0].left.wait(LEAVE)  # the server stops pulling


def test_progress_bars_move_on_a_terminal(servers: list[FakeOllama]) -> None:
    """Under a pty: the bars are redrawn as the bytes come in, each step seen on screen."""
    a, b = servers
    gates = [threading.Event() for _ in range(3)]
    a.script(
        gated(
            (None, {"status": "pulling manifest"}),
            (None, layer(0)),
            (gates[0], layer(GB)),
            (gates[1], layer(3 * GB)),
            (gates[2], layer(4 * GB)),
            (None, {"status": "verifying sha256 digest"}),
            (None, {"status": "success"}),
        ),
        "/api/pull",
    )
    b.script(failing_mid_pull(), "/api/pull")
    master, slave = pty.openpty()
    proc = spawn(
        ["pull", "m", *hosts(a.url, b.url)],
        a.url,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env=env_for(a.url, COLUMNS="100"),
    )
    os.close(slave)
    screen = b""
    try:
        with open(master, "rb", buffering=0, closefd=False) as terminal:
            for gate, shown in zip(
                gates, [b"0.0/4.0 GB", b"1.0/4.0 GB", b"3.0/4.0 GB"], strict=True
            ):
                screen += read_until(terminal, lambda s, shown=shown: shown in s, timeout=30)
                gate.set()
        screen += drain_pty(master)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == 1
    text = screen.decode("utf-8", "replace")
    assert "4.0/4.0 GB" in text and "success" in text
    assert "pulling 6a0746a1ec1a" in text  # the layer being pulled
    assert text.count("\x1b[2K") >= 3  # redrawn in place, not scrolled
    assert f"ostream: error:\x1b[0m {label(b.url)}: {FAILED}" in text  # after the bars


def test_ctrl_c_under_the_bars_gives_the_cursor_back(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(Reply(events=[Send(ndjson(layer(GB))), Stall(60)]), "/api/pull")
    master, slave = pty.openpty()
    proc = spawn(
        ["pull", "m"],
        fake_ollama.url,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env=env_for(fake_ollama.url, COLUMNS="100"),
    )
    os.close(slave)
    try:
        with open(master, "rb", buffering=0, closefd=False) as terminal:
            screen = read_until(terminal, lambda s: b"1.0/4.0 GB" in s, timeout=30)
        proc.send_signal(signal.SIGINT)
        screen += drain_pty(master)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGINT  # ended by the signal itself ($? 130)
    assert screen.count(b"\x1b[?25l") == screen.count(b"\x1b[?25h") == 1  # hidden, then shown
    assert b"Traceback" not in screen
    assert fake_ollama.requests[0].left.wait(LEAVE)


def test_an_interrupted_pull_shuts_every_connection_at_once(servers: list[FakeOllama]) -> None:
    """In-process, so only the shutdown can end the connections (not the process exiting)."""
    from ostream.fleet import Connection, Host
    from ostream.pull import Status, pull

    for server in servers:
        server.script(Reply(events=[Send(ndjson(layer(GB))), Stall(60)]), "/api/pull")
    seen: set[Host] = set()

    def on_status(event: Status) -> None:
        seen.add(event.host)
        if len(seen) == len(servers):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pull([Host(s.url) for s in servers], Connection(retries=0), "m", on_status, print)
    for server in servers:
        assert server.requests[0].left.wait(LEAVE)


def pull_in_process(*args: str) -> tuple[int, str]:
    """`ostream pull args` in-process: the exit status and stderr."""
    env = Environment(stdout=io.BytesIO(), stderr=io.BytesIO(), environ={})
    code = main(["pull", *args], env=env)
    return code, env.stderr.getvalue().decode()  # type: ignore[union-attr]


def test_a_single_host_timing_out_exits_124_as_generate_would() -> None:
    with FakeOllama() as slow:
        slow.script(Reply(events=[Stall(30)]), "/api/pull")
        code, err = pull_in_process("m", "--host", slow.url, "--timeout", "1", "--retries", "0")
    assert code == 124
    assert err.startswith("ostream: error: ") and err.count("\n") == 1


def test_one_of_two_hosts_refusing_exits_3(servers: list[FakeOllama]) -> None:
    a, _ = servers
    down = f"http://127.0.0.1:{closed_port()}"
    code, err = pull_in_process("m", *hosts(a.url, down), "--retries", "0")
    assert code == 3
    assert err.endswith("ostream: error: 1 of 2 hosts could not be reached\n")

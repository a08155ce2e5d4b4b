"""Signals: SIGINT and SIGTERM end ostream at once with 130/143, the connection closed,
the output kept; the reader of stdout leaving is noticed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ostream.errors import ExitCode, Stop
from ostream.signals import WAKE, reader_watch
from ostream.testing import FakeOllama, Reply, Send, Stall, ndjson
from tests.proc import (
    LEAVE,
    assert_quiet_stderr,
    closed_port,
    env_for,
    full_backlog,
    ignore_sigint,
    read_until,
    run_python,
    run_shell,
    spawn,
    wait_until_cancellable,
)

# --- SIGINT and SIGTERM: 130 and 143 at once, the connection closed, the output kept -------


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, -signal.SIGINT), (signal.SIGTERM, -signal.SIGTERM)]
)
def test_signal_while_the_model_loads(fake_ollama: FakeOllama, signum: int, code: int) -> None:
    proc = spawn(["generate", "-m", "stall", "hi"], fake_ollama.url)
    request = fake_ollama.wait_for_request()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == code
    assert (out, err) == (b"", b"")
    assert request.left.wait(LEAVE)


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, -signal.SIGINT), (signal.SIGTERM, -signal.SIGTERM)]
)
def test_signal_mid_stream_keeps_output(fake_ollama: FakeOllama, signum: int, code: int) -> None:
    fake_ollama.script(
        Reply(events=[Send(ndjson({"response": "partial", "done": False})), Stall(30)])
    )
    proc = spawn(["generate", "-m", "m", "hi"], fake_ollama.url)
    assert proc.stdout is not None
    got = read_until(proc.stdout, lambda d: b"partial" in d)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == code
    assert got + out == b"partial"  # no newline added into a pipe after a signal (man: OUTPUT)
    assert err == b""
    assert fake_ollama.requests[-1].left.wait(LEAVE)


def test_signal_while_retrying_to_connect() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    proc = spawn(["generate", "-m", "m", "--retries", "10", "hi"], url)
    wait_until_cancellable(proc)
    threading.Event().wait(0.8)  # likely retrying by now; 130 whichever phase it is in
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGINT  # ended by the signal itself ($? 130)
    assert err == b""


def test_sigint_while_connecting() -> None:
    server, fillers = full_backlog()
    try:
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        proc = spawn(["generate", "-m", "m", "--retries", "0", "x"], url)
        wait_until_cancellable(proc)
        threading.Event().wait(0.7)  # likely connecting by now; 130 whichever phase it is in
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        for sock in [server, *fillers]:
            sock.close()
    assert proc.returncode == -signal.SIGINT  # ended by the signal itself ($? 130)
    assert err == b""


def test_ignored_sigint_stays_ignored(fake_ollama: FakeOllama) -> None:
    proc = spawn(["generate", "-m", "stall", "hi"], fake_ollama.url, preexec_fn=ignore_sigint)
    request = fake_ollama.wait_for_request()
    proc.send_signal(signal.SIGINT)
    assert not request.left.wait(0.5)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGTERM  # ended by the signal itself ($? 143)
    assert request.left.wait(LEAVE)


def test_reader_watch_leaves_a_user_sigusr1_deadly(fake_ollama: FakeOllama) -> None:
    proc = spawn(["generate", "-m", "stall", "hi"], fake_ollama.url)
    request = fake_ollama.wait_for_request()
    proc.send_signal(signal.SIGUSR1)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGUSR1
    assert request.left.wait(LEAVE)


def test_ctrl_c_while_the_cli_is_still_importing_is_quiet() -> None:
    code = (
        "import builtins\n"
        "real = builtins.__import__\n"
        "def slow_to_import(name, *args, **kwargs):\n"
        "    if name == 'ostream.cli':\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = slow_to_import\n"
        "from ostream.__main__ import run\n"
        "run()\n"
    )
    result = run_python(code)
    assert result.returncode == -signal.SIGINT  # ended by the signal itself ($? 130)
    assert result.stderr == b""


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, -signal.SIGINT), (signal.SIGTERM, -signal.SIGTERM)]
)
def test_a_signal_while_stdout_is_blocked_closes_the_connection_and_exits_at_once(
    fake_ollama: FakeOllama, signum: int, code: int
) -> None:
    big = ndjson({"response": "x" * 1_000_000, "done": False})
    fake_ollama.script(
        Reply(events=[Send(ndjson({"response": "a", "done": False})), Send(big), Stall(30)])
    )
    proc = spawn(["generate", "-m", "m", "hi"], fake_ollama.url)  # stdout: a pipe nobody reads
    try:
        request = fake_ollama.wait_for_request()
        deadline = time.monotonic() + 5
        while len(request.sent) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # ostream is now blocked writing the big line into the full pipe
        proc.send_signal(signum)
        assert request.left.wait(5), "the connection was not closed"
        assert proc.wait(timeout=5) == code
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, -signal.SIGINT), (signal.SIGTERM, -signal.SIGTERM)]
)
def test_an_interrupted_answer_in_a_file_ends_with_a_newline(
    fake_ollama: FakeOllama, tmp_path: Path, signum: int, code: int
) -> None:
    out = tmp_path / "answer.txt"
    with out.open("wb") as handle:
        proc = spawn(
            ["generate", "-m", "stall", "-o", "fake_tokens_before=2", "x"],
            fake_ollama.url,
            stdout=handle,
        )
        try:
            deadline = time.monotonic() + 10
            while out.read_bytes() != b"echo: x" and time.monotonic() < deadline:
                time.sleep(0.02)
            assert out.read_bytes() == b"echo: x"
            proc.send_signal(signum)
            assert proc.wait(timeout=5) == code
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    assert out.read_bytes() == b"echo: x\n"


# --- the reader of stdout leaving: 141, silently, the connection closed -------------------


def test_broken_pipe_exits_141_silently_and_closes(fake_ollama: FakeOllama) -> None:
    proc = spawn(["generate", "-m", "burst", "-o", "fake_tokens=100000", "hi"], fake_ollama.url)
    assert proc.stdout is not None and proc.stderr is not None
    read_until(proc.stdout, lambda d: len(d) >= 100)
    proc.stdout.close()  # like `| head -c 100`
    err = proc.stderr.read()
    proc.wait(timeout=10)
    assert proc.returncode == 141
    assert err == b""
    assert fake_ollama.requests[-1].left.wait(LEAVE)


def test_broken_pipe_in_a_shell_pipeline(fake_ollama: FakeOllama) -> None:
    script = (
        'ostream generate -m burst -o fake_tokens=100000 hi | head -c 10; echo " ${PIPESTATUS[0]}"'
    )
    result = run_shell(script, fake_ollama.url)
    assert result.stdout == b"tok tok to 141\n"
    assert result.stderr == b""


@pytest.mark.parametrize(
    ("command", "before"),
    [("generate", 0), ("generate", 2), ("chat", 0), ("raw", 0), ("raw", 2)],
)
def test_reader_gone_while_waiting_closes_at_once(
    fake_ollama: FakeOllama, command: str, before: int
) -> None:
    """`| jq 'bad filter'` while the model loads (0 tokens) or stalls (2): no write
    would ever fail, yet the connection must close now and the exit be 141."""
    options = ["-o", "fake_stall=60", "-o", f"fake_tokens_before={before}"]
    if command == "raw":
        body = {"model": "stall", "prompt": "hi", "options": {"fake_tokens_before": before}}
        args = ["raw", "-d", json.dumps(body)]
    else:
        args = [command, "-m", "stall", *options, "hi"]
    proc = spawn(args, fake_ollama.url)
    assert proc.stdout is not None and proc.stderr is not None
    request = fake_ollama.wait_for_request()
    if before:
        read_until(proc.stdout, lambda d: d.count(b"\n" if command == "raw" else b" ") >= 1)
    proc.stdout.close()  # the reader exits without reading on
    assert request.left.wait(LEAVE)
    err = proc.stderr.read()
    proc.wait(timeout=10)
    assert proc.returncode == 141
    assert err == b""


def test_a_reader_leaving_mid_stream_never_prints_a_traceback(fake_ollama: FakeOllama) -> None:
    """`| head -c N` leaving while the answer streams: 141 and nothing on stderr, every
    time (the status is 141, or 0 when the whole answer fitted in the pipe before the
    reader left). The reader watch's Stop used to land, now and then, in the clean-up of a chunk
    generator the garbage collector finalised, and Python printed it ("Exception ignored
    in ... Stop: 141") in one run of ten or so."""
    fast = "-o fake_tokens=40 -o fake_delay=0"
    script = (
        "for i in $(seq 30); do"
        f" ostream generate -m paced {fast} hi | head -c 150 >/dev/null;"
        ' echo "${PIPESTATUS[0]}";'
        f" ostream generate --jsonl -m paced {fast} hi | head -c 150 >/dev/null;"
        ' echo "${PIPESTATUS[0]}";'
        " done"
    )
    result = run_shell(script, fake_ollama.url, timeout=300)
    assert result.stderr.decode(errors="replace") == ""
    # 141, or 0 where the whole answer fitted in the pipe before the reader left
    assert set(result.stdout.split()) <= {b"141", b"0"}
    assert len(result.stdout.split()) == 60


@pytest.mark.parametrize("command", ["generate", "chat"])
def test_a_reader_done_after_the_whole_answer_leaves_exit_0(
    fake_ollama: FakeOllama, tmp_path: Path, command: str
) -> None:
    """`| head -c N` that takes the whole answer and leaves: the stream completed (0), and
    a chat turn is saved, however the reader's exit and ostream's clean-up interleave."""
    history = tmp_path / "talk.jsonl"
    extra = f"--history {history}" if command == "chat" else ""
    script = (
        f"for i in $(seq 20); do ostream {command} -m m {extra} hi there"
        ' | head -c 15 >/dev/null; echo "${PIPESTATUS[0]}"; done'
    )
    result = run_shell(script, fake_ollama.url, timeout=120)
    assert result.stdout.split() == [b"0"] * 20, result.stderr  # "echo: hi there\n": 15 bytes
    assert result.stderr == b""
    if command == "chat":
        assert len(history.read_text().splitlines()) == 40
        assert [p.name for p in tmp_path.iterdir()] == ["talk.jsonl"]  # no temp files left


# --- the watch on the reader of stdout -----------------------------------------------------


def test_the_reader_watch_cleans_up_whenever_the_reader_leaves() -> None:
    """The reader leaving at any moment, also during the watch's own clean-up, never
    leaks its pipe or leaves its SIGUSR1 handler installed."""
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    stops = 0
    for i in range(300):
        read_end, write_end = os.pipe()
        with os.fdopen(write_end, "wb") as stdout:
            try:
                with reader_watch(stdout):
                    os.close(read_end)
                    if i % 10 == 0:
                        time.sleep(2)  # cut short by the watch: Stop raised inside
                    for _ in range(i * 10):  # else leave it at a different moment each time
                        pass
            except Stop:
                stops += 1
        assert signal.getsignal(WAKE) is signal.SIG_DFL
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before
    assert stops >= 30  # at least each time it had the time to


# --- ended by the signal itself, as the parent sees it --------------------


PYTHON = f'"{sys.executable}" -m ostream'


def _signal_mid_answer(
    script: str, url: str, send: Callable[[int, bytes], None]
) -> tuple[subprocess.Popen[bytes], bytes, bytes]:
    """Run `script` in bash as the leader of a new process group, as a terminal's
    foreground job is (a Ctrl-C is SIGINT to the whole group); once an answer has
    started, `send(bash's pid, its output so far)`. The shell, its stdout and stderr."""
    shell = subprocess.Popen(
        ["bash", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_for(url),
        start_new_session=True,
    )
    try:
        assert shell.stdout is not None
        shown = read_until(shell.stdout, lambda d: b"echo:" in d)  # the rest is 60 s away
        send(shell.pid, shown)
        out, err = shell.communicate(timeout=30)
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.communicate()
    return shell, out, err


def test_ctrl_c_stops_a_shell_loop(fake_ollama: FakeOllama) -> None:
    script = (
        f'for i in 1 2 3; do {PYTHON} generate -m slow -o fake_delay=60 "hi $i" </dev/null; done;'
        " echo the loop went on"
    )

    def ctrl_c(shell: int, shown: bytes) -> None:  # as a terminal sends it: to the group
        os.killpg(shell, signal.SIGINT)

    shell, out, err = _signal_mid_answer(script, fake_ollama.url, ctrl_c)
    assert b"the loop went on" not in out
    assert shell.returncode == -signal.SIGINT  # bash too ended by the signal
    assert len(fake_ollama.requests) == 1
    assert fake_ollama.requests[0].left.wait(LEAVE)
    assert err == b""


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_the_shell_status_is_130_or_143(fake_ollama: FakeOllama, signum: int, status: int) -> None:
    """A signal to ostream alone (the shell is not interrupted): `$?` says which."""
    # sh tells its pid, then becomes ostream: the pid to signal, and a shell waiting on it.
    script = (
        f'sh -c \'echo "pid $$"; exec "$0" "$@"\' {PYTHON} generate -m slow'
        ' -o fake_delay=60 hi </dev/null; echo " status $?"'
    )

    def to_ostream(shell: int, shown: bytes) -> None:
        os.kill(int(shown.split()[1]), signum)

    _, out, err = _signal_mid_answer(script, fake_ollama.url, to_ostream)
    assert out.endswith(f" status {status}\n".encode())
    assert fake_ollama.requests[0].left.wait(LEAVE)
    # bash reports a child killed by SIGTERM (not by SIGINT), as for curl or sleep.
    if signum == signal.SIGINT:
        assert err == b""
    else:
        assert b"Terminated" in err and b"ostream:" not in err
        assert_quiet_stderr(err)


# Where a Ctrl-C can land before a request starts, each made certain by sending the
# signal from inside the process at that moment (the wrapper patches, then runs the
# entry point as the console script does). What happens before the entry point's first
# statement belongs to the interpreter (bench/early_sigint.py measures that window).
_AT = {
    # importing ostream's command line (Typer, Click): SIGINT's default action
    "import": (
        "import builtins\n"
        "real = builtins.__import__\n"
        "def hook(name, *args, **kwargs):\n"
        "    if name == 'ostream.cli':\n"
        "        builtins.__import__ = real\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = hook\n"
    ),
    # Click parsing the command line: the default action too
    "parsing": (
        "from typer.core import TyperGroup\n"
        "real = TyperGroup.parse_args\n"
        "def hook(self, ctx, args):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(self, ctx, args)\n"
        "TyperGroup.parse_args = hook\n"
    ),
    # the command has started (ostream's handler): unwinds, then ends by the signal
    "command": (
        "import ostream.host\n"
        "real = ostream.host.resolve\n"
        "def hook(*args):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(*args)\n"
        "ostream.host.resolve = hook\n"
    ),
}


def _ctrl_c_at(moment: str, url: str, **popen: Any) -> subprocess.CompletedProcess[bytes]:
    """`ostream generate -m m hi` through the console script's entry point, with a
    SIGINT sent from inside at `moment`."""
    code = (
        "import os, signal, sys\n"
        + _AT[moment]
        + "sys.argv = ['ostream', 'generate', '-m', 'm', 'hi']\n"
        + "from ostream.__main__ import run\n"
        + "run()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env_for(url),
        timeout=30,
        **popen,
    )


@pytest.mark.parametrize("moment", list(_AT))
def test_an_early_ctrl_c_ends_by_the_signal_without_a_traceback(
    fake_ollama: FakeOllama, moment: str
) -> None:
    result = _ctrl_c_at(moment, fake_ollama.url)
    assert result.returncode == -signal.SIGINT, result.stderr
    assert (result.stdout, result.stderr) == (b"", b"")
    assert fake_ollama.requests == []


def test_an_ignored_sigint_stays_ignored_from_the_start(fake_ollama: FakeOllama) -> None:
    """The entry point leaves an inherited SIG_IGN alone: Ctrl-C while parsing does nothing."""
    result = _ctrl_c_at("parsing", fake_ollama.url, preexec_fn=ignore_sigint)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"echo: hi\n", b"")


def test_quiet_unraisable_drops_only_what_a_signal_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Stop, KeyboardInterrupt or BrokenPipeError raised in a finaliser is not printed;
    any other unraisable exception still reaches the default hook."""
    seen: list[BaseException] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_value))
    from ostream.signals import quiet_unraisable

    quiet_unraisable()

    class Unraisable:
        def __init__(self, exc: BaseException) -> None:
            self.exc_value = exc

    for exc in (Stop(ExitCode.BROKEN_PIPE), KeyboardInterrupt(), BrokenPipeError()):
        sys.unraisablehook(Unraisable(exc))  # type: ignore[arg-type]
    other = ValueError("a bug")
    sys.unraisablehook(Unraisable(other))  # type: ignore[arg-type]
    assert seen == [other]

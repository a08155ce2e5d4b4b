"""Helpers for running ostream as a real process against the fake server."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEAVE = 5.0  # generous bound for "the client closed the connection"; not a speed assertion


def env_for(url: str, **extra: str) -> dict[str, str]:
    """This environment without the user's Ollama/ostream/Python settings, aimed at `url`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OLLAMA_", "OSTREAM_", "PYTHON")) and k != "NO_COLOR"
    }
    env.update(OLLAMA_HOST=url, PYTHONPATH=ROOT, **extra)
    return env


def spawn(
    args: list[str],
    url: str,
    *,
    stdin: Any = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
    stdout: Any = subprocess.PIPE,
    stderr: Any = subprocess.PIPE,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `python -m ostream args` against the server at `url`; the caller waits."""
    return subprocess.Popen(
        [sys.executable, "-m", "ostream", *args],
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=env if env is not None else env_for(url),
        preexec_fn=preexec_fn,
    )


def run(
    args: Sequence[str | bytes],
    url: str,
    *,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    stdin: Any = subprocess.DEVNULL,
    stdout: Any = subprocess.PIPE,
    stderr: Any = subprocess.PIPE,
    close_fd: int | None = None,
    preexec_fn: Callable[[], None] | None = None,
    timeout: float = 30,
) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m ostream args` to its end against the server at `url`.

    `input` is written to a stdin pipe (else stdin is `stdin`, /dev/null by default);
    stdout and stderr are pipes unless given (an fd, a file, or None to inherit);
    `close_fd` is closed in the child before ostream starts (a closed stdin/stdout/stderr),
    and `preexec_fn` runs there too (a resource limit, a signal disposition).
    """

    def prepare() -> None:
        if close_fd is not None:
            os.close(close_fd)
        if preexec_fn is not None:
            preexec_fn()

    return subprocess.run(
        [sys.executable, "-m", "ostream", *args],
        input=input,
        stdin=None if input is not None else stdin,
        stdout=stdout,
        stderr=stderr,
        env=env if env is not None else env_for(url),
        preexec_fn=prepare if close_fd is not None or preexec_fn is not None else None,
        timeout=timeout,
    )


def run_python(code: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    """`python -c code args` with this checkout importable and the user's settings cleared."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env_for(""),
        timeout=timeout,
    )


def run_shell(script: str, url: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    """`bash -c script`, where `ostream` is this checkout's ostream aimed at `url`."""
    define = f'ostream() {{ "{sys.executable}" -m ostream "$@"; }}\n'
    return subprocess.run(
        ["bash", "-c", define + script],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env_for(url),
        timeout=timeout,
    )


def read_until(stream: IO[bytes], predicate: Callable[[bytes], bool], timeout: float = 10) -> bytes:
    """Read what the process writes until `predicate(all_so_far)`; fail after `timeout`."""
    fd = stream.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while not predicate(data):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting; got {data!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"EOF while waiting; got {data!r}")
            data += chunk
    return data


def hosts(*urls: str) -> list[str]:
    """`--host URL` for each URL: the command-line arguments for a fleet."""
    return [arg for url in urls for arg in ("--host", url)]


def closed_port() -> int:
    """A local TCP port nothing listens on (connecting is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dead_pipe() -> int:
    """The write end of a pipe whose read end is already closed (writing gives EPIPE)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


def wait_until_cancellable(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Wait until ostream has taken over SIGTERM (signals.cancellable), seen in the
    process's caught-signal mask. From then on SIGINT and SIGTERM meet ostream's own
    handling; a signal during Python's start-up kills it (-2) or prints a traceback."""
    status = f"/proc/{proc.pid}/status"
    if not os.path.exists(status):  # no /proc: a generous pause instead of the event
        threading.Event().wait(2)
        return
    deadline = time.monotonic() + timeout
    while True:
        with open(status) as handle:
            caught = re.search(r"^SigCgt:\s*([0-9a-f]+)$", handle.read(), re.MULTILINE)
        if caught and int(caught.group(1), 16) & (1 << (signal.SIGTERM - 1)):
            return
        if proc.poll() is not None:
            raise AssertionError(f"ostream exited ({proc.returncode}) before handling signals")
        if time.monotonic() > deadline:
            raise AssertionError("ostream did not take over SIGTERM in time")
        threading.Event().wait(0.01)


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def assert_quiet_stderr(stderr: bytes) -> None:
    assert b"Traceback" not in stderr
    assert b"Exception ignored" not in stderr


def full_backlog() -> tuple[socket.socket, list[socket.socket]]:
    """A listening socket whose accept queue is full: new connects hang (SYNs dropped)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        sock = socket.socket()
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            sock.connect(("127.0.0.1", port))
        fillers.append(sock)
    threading.Event().wait(0.2)
    return server, fillers


def drain_pty(master: int) -> bytes:
    """Everything shown on a pty until its last writer is gone (EIO or EOF); closes it."""
    shown = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        shown += data
    os.close(master)
    return shown

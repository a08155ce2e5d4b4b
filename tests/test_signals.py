"""Signals: SIGINT and SIGTERM end ostream at once with 130/143, the connection closed,
the output kept; the reader of stdout leaving is noticed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from ostream.errors import Stop
from ostream.signals import WAKE, reader_watch
from tests.fake_ollama import FakeOllama, Reply, Send, Stall, ndjson
from tests.proc import spawn

# --- a signal closes the connection at once, whatever ostream is doing ---------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
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


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
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

"""Signals: SIGINT and SIGTERM end ostream at once with 130/143, the connection closed,
the output kept; the reader of stdout leaving is noticed."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

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

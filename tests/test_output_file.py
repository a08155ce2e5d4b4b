"""--output FILE: the answer goes to FILE, replaced atomically and only when the
answer completed; a failure or an interrupt leaves FILE as it was."""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest

from ostream.testing import FakeOllama, Reply, Send, Stall, ndjson
from tests.inproc import invoke
from tests.proc import assert_quiet_stderr, spawn, wait_until_cancellable


def test_a_completed_answer_replaces_the_file(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    out = tmp_path / "answer.txt"
    out.write_text("old\n")
    out.chmod(0o640)
    result = invoke(fake_ollama, "generate", "-m", "m", "--output", str(out), "hi", "there")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert out.read_text() == "echo: hi there\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["answer.txt"]


def test_chat_and_a_new_file(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    out = tmp_path / "new.txt"
    assert invoke(fake_ollama, "chat", "-m", "m", "--output", str(out), "hi").exit_code == 0
    assert out.read_text() == "echo: hi\n"


@pytest.mark.parametrize(("model", "code"), [("drop", 5), ("error-mid", 1), ("missing", 4)])
def test_a_failure_leaves_the_file_as_it_was(
    fake_ollama: FakeOllama, tmp_path: Path, model: str, code: int
) -> None:
    out = tmp_path / "answer.txt"
    out.write_text("old\n")
    result = invoke(fake_ollama, "generate", "-m", model, "--output", str(out), "hi")
    assert result.exit_code == code
    assert out.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["answer.txt"]


def test_extract_without_a_block_leaves_the_file(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    out = tmp_path / "code.py"
    out.write_text("old\n")
    result = invoke(fake_ollama, "generate", "-m", "m", "-x", "--output", str(out), "hi")
    assert result.exit_code == 1
    assert out.read_text() == "old\n"


def test_an_unwritable_folder_is_exit_2_before_sending(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", "--output", str(tmp_path / "no/f"), "x")
    assert result.exit_code == 2
    assert "--output" in result.stderr
    assert not fake_ollama.requests


def test_a_symlink_keeps_pointing_at_the_new_answer(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    target = tmp_path / "target.txt"
    target.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    assert invoke(fake_ollama, "generate", "-m", "m", "--output", str(link), "x").exit_code == 0
    assert link.is_symlink()
    assert target.read_text() == "echo: x\n"


def test_a_device_is_written_to_not_replaced(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", "--output", "/dev/null", "x")
    assert result.exit_code == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_mid_stream_leaves_the_file(
    fake_ollama: FakeOllama, tmp_path: Path, signum: int, code: int
) -> None:
    out = tmp_path / "answer.txt"
    out.write_text("old\n")
    fake_ollama.script(
        Reply(events=[Send(ndjson({"response": "partial", "done": False})), Stall(30)])
    )
    proc = spawn(["generate", "-m", "m", "--output", str(out), "hi"], fake_ollama.url)
    try:
        wait_until_cancellable(proc)
        deadline = time.monotonic() + 20
        while not any(  # the partial answer has reached the stand-in file
            p.name.startswith(".answer.txt.") and p.read_bytes() == b"partial"
            for p in tmp_path.iterdir()
        ):
            assert time.monotonic() < deadline, os.listdir(tmp_path)
            threading.Event().wait(0.02)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode in (code, -signum)  # 130/143, or death by the signal itself
    assert_quiet_stderr(err)
    assert out.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["answer.txt"]


def test_dash_is_stdout(
    fake_ollama: FakeOllama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(fake_ollama, "generate", "-m", "m", "--output", "-", "hi")
    assert (result.exit_code, result.stdout) == (0, "echo: hi\n")
    assert os.listdir(tmp_path) == []

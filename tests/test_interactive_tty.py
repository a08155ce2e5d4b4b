"""chat -i as a real process on a pseudo-terminal: Ctrl-C mid-reply, Ctrl-D, no terminal."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from ostream.testing import FakeOllama, Reply, Send, Stall
from tests.proc import LEAVE, ROOT, env_for, run

PROMPT = b">>> "


class Terminal:
    """`python -m ostream ARGS` on a pty of 24x80, read as the user would see it."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: ostream, with the pty as its controlling terminal
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "-m", "ostream", *args], env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.shown = b""

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def wait_for(self, what: bytes, after: int = 0, timeout: float = 30) -> int:
        """Read until `what` appears after offset `after`; its offset."""
        deadline = time.monotonic() + timeout
        while (at := self.shown.find(what, after)) < 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what!r} not shown; the screen got {self.shown!r}")
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                data = b""
            if not data:
                raise AssertionError(f"ostream ended before {what!r}: {self.shown!r}")
            self.shown += data
        return at

    def status(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):
                self.shown += os.read(self.fd, 65536)
            if time.monotonic() > deadline:
                os.kill(self.pid, 9)
                raise AssertionError(f"ostream did not end: {self.shown!r}")


def _env(url: str, tmp_path: Path) -> dict[str, str]:
    # No cursor position requests: nothing here answers them as a terminal would.
    return env_for(
        url, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", XDG_STATE_HOME=str(tmp_path), NO_COLOR="1"
    )


def test_ctrl_c_mid_reply_stops_it_and_gives_the_message_back(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    history = tmp_path / "talk.jsonl"
    history.write_text('{"role":"user","content":"before"}\n{"role":"assistant","content":"ok"}\n')
    args = ["chat", "-i", "-m", "paced", "-o", "fake_tokens=2000", "-o", "fake_delay=0.01"]
    term = Terminal([*args, "--history", str(history)], _env(fake_ollama.url, tmp_path))
    term.wait_for(PROMPT)
    term.type(b"tell me more\r")
    term.wait_for(b"tok tok tok")
    term.type(b"\x03")  # Ctrl-C: SIGINT, the terminal is cooked while a reply streams
    request = fake_ollama.wait_for_request()
    assert request.left.wait(LEAVE), "the connection was not closed"
    assert request.finished_at is None  # it left mid-reply
    again = term.wait_for(PROMPT, term.shown.rfind(b"tok"))
    term.wait_for(b"tell me more", again)  # the message is back in the input line
    assert history.read_text().count("\n") == 2  # the cut turn was not saved
    term.type(b"\x03")  # Ctrl-C at the prompt clears the line
    term.type(b"\x04")  # Ctrl-D on the empty line ends the session
    assert term.status() == 0
    assert b"Traceback" not in term.shown
    assert history.read_text().count("\n") == 2


def test_ctrl_d_ends_with_exit_0_after_a_turn(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    term = Terminal(["chat", "-i", "-m", "m"], _env(fake_ollama.url, tmp_path))
    term.wait_for(PROMPT)
    term.type(b"hi\r")
    term.wait_for(b"echo: hi")
    term.wait_for(PROMPT, term.shown.find(b"echo: hi"))
    term.type(b"\x04")
    assert term.status() == 0


def test_without_a_terminal_it_is_a_usage_error(fake_ollama: FakeOllama) -> None:
    result = run(["chat", "-i", "-m", "m"], fake_ollama.url, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert result.stderr == b"ostream: error: -i needs a terminal on stdin and stdout\n"
    assert not fake_ollama.requests


def test_ctrl_c_before_the_first_token_gives_the_prompt_a_line_of_its_own(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    fake_ollama.script(Reply(events=[Send(b""), Stall(60)]), "/api/chat")
    term = Terminal(["chat", "-i", "-m", "m"], _env(fake_ollama.url, tmp_path))
    term.wait_for(PROMPT)
    term.type(b"hello\r")
    request = fake_ollama.wait_for_request()
    sent = term.wait_for(b"hello")
    term.type(b"\x03")  # the model is still loading: nothing shown yet
    assert request.left.wait(LEAVE), "the connection was not closed"
    again = term.wait_for(PROMPT, sent)
    term.wait_for(b"hello", again)  # the message is back in the input line
    cut = term.shown.rfind(b"^C", sent, again)
    assert cut > 0 and b"\n" in term.shown[cut:again], term.shown[sent:]
    term.type(b"\x03\x04")
    assert term.status() == 0

"""Ctrl-C and SIGTERM as the process's parent sees them: ostream ends by the signal itself.

A shell waits for its foreground child and, on a Ctrl-C, goes on only if the child
*handled* the signal (exited, even with 130); a child that died by SIGINT stops the
loop or script too. So after closing the connection, ostream ends by the signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.fake_ollama import FakeOllama
from tests.proc import assert_quiet_stderr, env_for, ignore_sigint, read_until

LEAVE = 10  # seconds to wait for the server to see the client go (never reached when it works)
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

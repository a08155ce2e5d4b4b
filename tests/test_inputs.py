"""Input from stdin and files: read in bounded pieces, refused over the size limit,
interruptible while it is read, a leading UTF-8 BOM dropped."""

from __future__ import annotations

import io
import os
import resource
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ostream.cli import app, main
from ostream.environment import Environment
from ostream.errors import UsageError
from ostream.inputs import PIECE, limit, read_all
from ostream.testing import FakeOllama
from tests.proc import assert_quiet_stderr, closed_port, env_for, spawn

runner = CliRunner()
BOM = b"\xef\xbb\xbf"
TOO_LARGE = "is larger than 1 MiB (OSTREAM_MAX_INPUT raises the limit)"
ONE_MIB = {"OSTREAM_MAX_INPUT": "1"}


def invoke(server: FakeOllama, *args: str, input: bytes | None = None, **env: str) -> Any:
    base = {"OLLAMA_HOST": server.url, "OSTREAM_MODEL": "", "NO_COLOR": "1"}
    return runner.invoke(app, list(args), input=input, env={**base, **env})


# --- the reader ------------------------------------------------------------------------------


def test_an_endless_input_is_refused_after_one_byte_past_the_limit() -> None:
    asked: list[int] = []

    def endless(size: int) -> bytes:
        asked.append(size)
        return b"\0" * size

    with pytest.raises(UsageError) as info:
        read_all(endless, "stdin", ONE_MIB)
    assert info.value.message == f"stdin {TOO_LARGE}"
    assert sum(asked) == (1 << 20) + 1  # never more than the limit and one byte
    assert max(asked) <= PIECE


def test_an_input_of_exactly_the_limit_is_taken() -> None:
    data = iter([b"x" * (1 << 20), b""])
    assert len(read_all(lambda size: next(data)[:size] or b"", "stdin", ONE_MIB)) == PIECE


@pytest.mark.parametrize(("value", "mib"), [("", 64), ("1", 1), (" 2048 ", 2048)])
def test_the_limit_is_in_mib(value: str, mib: int) -> None:
    assert limit({"OSTREAM_MAX_INPUT": value}) == mib << 20


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "1e3", "lots", "\uff11"])
def test_a_bad_limit_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError) as info:
        limit({"OSTREAM_MAX_INPUT": value})
    assert info.value.message == (f"OSTREAM_MAX_INPUT takes a whole number of MiB, not {value!r}")


# --- every input is bounded --------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["generate", "-m", "m", "--format", "@{big}", "hi"],
        ["generate", "-m", "m", "--image", "{big}", "hi"],
        ["chat", "-m", "m", "--messages", "{big}"],
        ["chat", "-m", "m", "--history", "{big}", "hi"],
        ["chat", "-m", "m", "--tools", "{big}", "hi"],
        ["raw", "-d", "@{big}"],
    ],
    ids=["format", "image", "messages", "history", "tools", "raw"],
)
def test_a_file_over_the_limit_is_refused(
    fake_ollama: FakeOllama, tmp_path: Path, args: list[str]
) -> None:
    big = tmp_path / "big"
    with big.open("wb") as handle:
        handle.truncate(3 << 30)  # 3 GB, sparse: refused after reading 1 MiB
    result = invoke(
        fake_ollama, *[a.format(big=big) for a in args], OSTREAM_MAX_INPUT="1", input=b""
    )
    assert result.exit_code == 2, result.output
    assert result.output.startswith("ostream: error: ")
    assert result.output.endswith(f": {big} {TOO_LARGE}\n")
    assert fake_ollama.requests == []


@pytest.mark.parametrize("args", [["generate", "-m", "m"], ["raw"]], ids=["prompt", "raw"])
def test_the_limit_is_the_one_the_commands_environment_gives(args: list[str]) -> None:
    """OSTREAM_MAX_INPUT is read from the Environment a command runs in, not os.environ."""
    env = Environment(
        stdout=io.BytesIO(),
        stderr=io.BytesIO(),
        stdin=io.BytesIO(b" " * ((1 << 20) + 1)),
        environ={**ONE_MIB, "OLLAMA_HOST": f"http://127.0.0.1:{closed_port()}"},
    )
    assert main([*args, "--retries", "0"], env=env) == 2  # refused before connecting
    said = env.stderr.getvalue()  # type: ignore[attr-defined]
    assert said == f"ostream: error: stdin {TOO_LARGE}\n".encode()


@pytest.mark.parametrize(
    "args",
    [
        ["generate", "-m", "m"],
        ["chat", "-m", "m", "--messages", "-"],
        ["raw", "-d", "-"],
        ["raw"],
    ],
    ids=["prompt", "messages", "raw-d", "raw"],
)
def test_stdin_over_the_limit_is_refused(fake_ollama: FakeOllama, args: list[str]) -> None:
    result = invoke(fake_ollama, *args, input=b" " * ((1 << 20) + 1), OSTREAM_MAX_INPUT="1")
    assert result.exit_code == 2
    assert result.output == f"ostream: error: stdin {TOO_LARGE}\n"
    assert fake_ollama.requests == []


def limit_memory() -> None:
    """The child may map 512 MiB: enough for ostream and a 64 MiB input, not for /dev/zero."""
    resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))


def test_dev_zero_on_stdin_is_refused_at_the_default_limit_in_bounded_memory(
    fake_ollama: FakeOllama,
) -> None:
    with open("/dev/zero", "rb") as zero:
        proc = spawn(
            ["generate", "-m", "m", "hi"], fake_ollama.url, stdin=zero, preexec_fn=limit_memory
        )
        out, err = proc.communicate(timeout=120)
    assert (proc.returncode, out) == (2, b"")
    assert (
        err == b"ostream: error: stdin is larger than 64 MiB (OSTREAM_MAX_INPUT raises the limit)\n"
    )
    assert fake_ollama.requests == []


# --- signals while stdin is read -----------------------------------------------------------------


class Feeder(threading.Thread):
    """Writes to a pipe without end (up to `most` bytes) until its reader goes away."""

    def __init__(self, fd: int, most: int) -> None:
        super().__init__(daemon=True)
        self.fd, self.most = fd, most
        self.written = 0
        self.started_reading = threading.Event()
        self.broken = False

    def run(self) -> None:
        piece = b"y" * PIECE
        try:
            while self.written < self.most:
                self.written += os.write(self.fd, piece)
                if self.written >= 4 << 20:  # far beyond a pipe's buffer: it is reading
                    self.started_reading.set()
        except BrokenPipeError:
            self.broken = True
        finally:
            os.close(self.fd)
            self.started_reading.set()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_reading_of_a_stdin_that_never_ends(
    fake_ollama: FakeOllama, signum: int
) -> None:
    """`producer | ostream generate`, interrupted: it stops at once, not after the end."""
    read_end, write_end = os.pipe()
    most = 256 << 20
    feeder = Feeder(write_end, most)
    env = env_for(fake_ollama.url, OSTREAM_MAX_INPUT="1024")
    proc = spawn(["generate", "-m", "m", "hi"], fake_ollama.url, stdin=read_end, env=env)
    os.close(read_end)
    feeder.start()
    assert feeder.started_reading.wait(60)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    feeder.join(60)
    assert proc.returncode == -signum  # ended by the signal itself ($? 130 / 143)
    assert feeder.broken and feeder.written < most  # it stopped reading when signalled
    assert_quiet_stderr(err)
    assert fake_ollama.requests == []


# --- a byte order mark is dropped ---------------------------------------------------------------


def test_a_bom_on_stdin_is_not_part_of_the_prompt(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", "words", input=BOM + b"piped\n")
    assert result.exit_code == 0, result.output
    assert fake_ollama.requests[-1].json["prompt"] == "piped\n\nwords"


@pytest.mark.parametrize("how", ["stdin", "-d -", "-d @file"])
def test_a_bom_before_a_raw_body_is_dropped(
    fake_ollama: FakeOllama, tmp_path: Path, how: str
) -> None:
    body = BOM + b'{"model":"m","prompt":"hi"}'
    (tmp_path / "body.json").write_bytes(body)
    args = {"stdin": [], "-d -": ["-d", "-"], "-d @file": ["-d", f"@{tmp_path / 'body.json'}"]}
    result = invoke(fake_ollama, "raw", *args[how], input=body)
    assert result.exit_code == 0, result.output
    assert fake_ollama.requests[-1].body == body[3:]


def test_a_bom_before_a_format_file_is_dropped(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_bytes(BOM + b'{"type":"object"}')
    result = invoke(fake_ollama, "generate", "-m", "m", "--format", f"@{schema}", "hi")
    assert result.exit_code == 0, result.output
    assert fake_ollama.requests[-1].json["format"] == {"type": "object"}

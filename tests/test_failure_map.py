"""The failure map: every kind of exception → exit code, message, stdout silenced, machine
name; and the Click adapter in front of it. In-process and fast: one row per kind."""

from __future__ import annotations

import errno
import io

import pytest

from ostream.cli import main
from ostream.environment import Environment
from ostream.errors import (
    ConnectError,
    ExitCode,
    Failed,
    Failure,
    ModelNotFound,
    OstreamError,
    OutputError,
    ProtocolError,
    ServerError,
    Stop,
    Timeout,
    UsageError,
    classify,
    combine,
)
from ostream.guard import report
from tests.inproc import environment, err, out

UNEXPECTED = "unexpected ValueError: boom (OSTREAM_DEBUG=1 shows a traceback)"
NO_SPACE = OSError(errno.ENOSPC, "No space left on device")
NO_SPACE_IN_FILE = OSError(errno.ENOSPC, "No space left on device", "/home/u/.bashrc")

ROWS = [
    # exception, exit code, message, stdout silenced, machine name
    (UsageError("no prompt"), 2, "no prompt", False, "invalid_request"),
    (ServerError("boom (HTTP 500)"), 1, "boom (HTTP 500)", False, "server_error"),
    (ConnectError("refused"), 3, "refused", False, "connection_failed"),
    (ModelNotFound("no m"), 4, "no m", False, "model_not_found"),
    (ProtocolError("cut"), 5, "cut", False, "protocol_error"),
    (Timeout("slow"), 124, "slow", False, "timeout"),
    (OstreamError("other"), 1, "other", False, "server_error"),
    (
        OutputError.of(NO_SPACE),
        1,
        "cannot write to stdout: No space left on device",
        True,
        "output_error",
    ),
    (
        OutputError.of(NO_SPACE_IN_FILE),
        1,
        "/home/u/.bashrc: No space left on device",
        True,
        "output_error",
    ),
    (KeyboardInterrupt(), 130, None, True, "interrupted"),
    (Stop(ExitCode.TERMINATED), 143, None, True, "terminated"),
    (Stop(ExitCode.BROKEN_PIPE), 141, None, True, "broken_pipe"),
    (Stop(ExitCode.USAGE), 2, None, False, "invalid_request"),
    (BrokenPipeError(), 141, None, True, "broken_pipe"),
    (ValueError("boom"), 1, UNEXPECTED, False, "internal_error"),
]


@pytest.mark.parametrize(
    ("exc", "code", "message", "silenced", "kind"), ROWS, ids=[type(r[0]).__name__ for r in ROWS]
)
def test_each_kind_of_failure_maps_to_its_code_message_and_name(
    exc: BaseException, code: int, message: str | None, silenced: bool, kind: str
) -> None:
    assert classify(exc) == Failure(ExitCode(code), message, silenced, kind)


@pytest.mark.parametrize(
    ("exc", "code", "message", "silenced", "kind"), ROWS, ids=[type(r[0]).__name__ for r in ROWS]
)
def test_a_failure_ends_a_session_when_it_is_silent_or_stdout_is_gone(
    exc: BaseException, code: int, message: str | None, silenced: bool, kind: str
) -> None:
    """chat -i goes on after a failed turn unless the failure ends the run (guard.report)."""
    env = environment()
    if message is None or silenced:
        with pytest.raises(type(exc)):
            report(exc, env)
        assert err(env) == b""
    else:
        assert report(exc, env).code == code
        assert err(env) == f"ostream: error: {message}\n".encode()


def test_under_ostream_debug_a_session_re_raises_every_failure() -> None:
    with pytest.raises(ServerError):
        report(ServerError("boom"), environment(environ={"OSTREAM_DEBUG": "1"}))


def test_an_os_error_inside_a_command_is_unexpected_not_an_output_error() -> None:
    """Only the Writer (stdout) and the Click adapter (help, completion files) know an
    OSError is about output; anywhere else it is a bug, reported as one."""
    failure = classify(OSError(errno.EIO, "I/O error"))
    assert failure.kind == "internal_error"
    assert failure.message is not None and failure.message.startswith("unexpected OSError")


def test_every_exit_code_has_its_own_machine_name_and_wording() -> None:
    """Batch's "error": {"code": ...} uses these names; --help, man and README the wording."""
    kinds = [code.kind for code in ExitCode]
    assert len(set(kinds)) == len(kinds)
    assert all(code.meaning and code.meaning == code.meaning.strip() for code in ExitCode)


# --------------------------------------------------------------------------- the Click adapter


def test_an_unknown_option_is_one_usage_line_with_a_pointer_to_help() -> None:
    env = environment()
    assert main(["generate", "--zzz"], env=env) == 2
    assert err(env) == b"ostream: error: No such option: --zzz (see 'ostream generate --help')\n"
    assert out(env) == b""


def test_a_bad_option_value_is_a_usage_error() -> None:
    env = environment()
    assert main(["generate", "--retries", "x", "-m", "m", "hi"], env=env) == 2
    assert err(env).startswith(b"ostream: error: --retries takes a whole number")


def test_no_command_shows_the_help_on_stderr_with_status_2() -> None:
    env = environment()
    assert main([], env=env) == 2
    assert err(env).startswith(b"Usage: ostream [OPTIONS] COMMAND [ARGS]...")
    assert b"Exit status:" in err(env)
    assert out(env) == b""


class BrokenPipe(io.BytesIO):
    def write(self, data: object) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


class FullDisk(io.BytesIO):
    def write(self, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_version_into_a_closed_pipe_is_141_silently() -> None:
    env = Environment(stdout=BrokenPipe(), stderr=io.BytesIO())
    assert main(["--version"], env=env) == 141
    assert err(env) == b""


def test_version_into_a_full_disk_is_1_with_a_message() -> None:
    env = Environment(stdout=FullDisk(), stderr=io.BytesIO())
    assert main(["--version"], env=env) == 1
    assert err(env) == b"ostream: error: cannot write to stdout: No space left on device\n"


def test_version_help_and_a_command_with_stdout_closed_are_refused_with_status_1() -> None:
    for args in (["--version"], ["--help"], ["generate", "--help"], ["generate", "-m", "m", "hi"]):
        env = Environment(stdout=None, stderr=io.BytesIO())
        assert main(args, env=env) == 1
        assert err(env) == b"ostream: error: cannot write to stdout: it is closed\n"


class Recording(Environment):
    """An environment that notes when stdout would be silenced (fd 1 → /dev/null)."""

    silenced = False

    def silence_stdout(self) -> None:
        self.silenced = True


def test_ctrl_c_while_the_command_line_is_handled_is_130_with_stdout_silenced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("ostream.cli.execute", interrupted)
    env = Recording(stdout=io.BytesIO(), stderr=io.BytesIO())
    assert main(["generate", "-m", "m", "x"], env=env) == 130
    assert env.silenced
    assert err(env) == b""


def test_a_closed_pipe_silences_stdout_and_a_usage_error_does_not() -> None:
    env = Recording(stdout=BrokenPipe(), stderr=io.BytesIO())
    assert main(["--version"], env=env) == 141
    assert env.silenced
    env = Recording(stdout=io.BytesIO(), stderr=io.BytesIO())
    assert main(["generate", "--zzz"], env=env) == 2
    assert not env.silenced


REFUSED = Failure(ExitCode.CONNECT, "cannot connect to http://h:1")
SLOW = Failure(ExitCode.TIMEOUT, "http://h:1 did not answer in time")
BROKEN = Failure(ExitCode.SERVER_ERROR, "boom", kind="output_error")


@pytest.mark.parametrize("each", [False, True])
@pytest.mark.parametrize("failure", [REFUSED, SLOW, BROKEN])
def test_combine_over_one_host_is_that_hosts_failure(failure: Failure, each: bool) -> None:
    assert combine([failure], 1, every_host_must_succeed=each) is failure


@pytest.mark.parametrize(
    ("failures", "hosts", "code", "message"),
    [
        ([REFUSED, SLOW], 2, 3, "no host answered"),
        ([SLOW], 2, 1, "1 of 2 hosts did not answer"),
        ([REFUSED], 3, 1, "1 of 3 hosts did not answer"),
    ],
)
def test_combine_a_listing_ends_3_when_no_host_answered_else_1(
    failures: list[Failure], hosts: int, code: int, message: str
) -> None:
    assert combine(failures, hosts) == Failure(ExitCode(code), message)


@pytest.mark.parametrize(
    ("failures", "hosts", "code", "message"),
    [
        ([REFUSED], 2, 3, "1 of 2 hosts could not be reached"),
        ([SLOW, REFUSED], 3, 3, "1 of 3 hosts could not be reached"),
        ([SLOW, BROKEN], 2, 1, "the pull failed on 2 of 2 hosts"),
    ],
)
def test_combine_a_pull_ends_3_when_a_host_could_not_be_reached_else_1(
    failures: list[Failure], hosts: int, code: int, message: str
) -> None:
    assert combine(failures, hosts, every_host_must_succeed=True) == Failure(
        ExitCode(code), message
    )


def test_failed_carries_its_failure_through_classify_unchanged() -> None:
    assert classify(Failed(SLOW)) is SLOW
    assert classify(Failed(BROKEN)).kind == "output_error"

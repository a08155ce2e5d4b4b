"""Saving a --history turn: refused up front when the file could not be replaced, kept by
appending when a second copy does not fit, one clean line when it still fails, and
every turn kept when runs on one file overlap."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ostream.cli import app
from ostream.history import replaceable
from ostream.testing import FakeOllama
from tests.proc import ROOT, env_for

runner = CliRunner()
OLD = b'{"role":"user","content":"a"}\n{"role":"assistant","content":"b"}\n'
TURN = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "echo: hi"}]


def chat(server: FakeOllama, history: Path, *words: str) -> Any:
    env = {"OLLAMA_HOST": server.url, "NO_COLOR": "1", "OSTREAM_MODEL": ""}
    return runner.invoke(
        app, ["chat", "-m", "m", "--history", str(history), *(words or ("hi",))], env=env
    )


def lines(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


# --- a file the rename could not replace is refused before the request --------------------


def status(mode: int, uid: int) -> os.stat_result:
    return os.stat_result((mode, 0, 0, 1, uid, uid, 0, 0, 0, 0))


@pytest.mark.parametrize(
    ("dir_mode", "file_uid", "dir_uid", "euid", "allowed"),
    [
        (0o1777, 1001, 0, 1000, False),  # someone else's file in /tmp
        (0o1777, 1000, 0, 1000, True),  # my file in /tmp
        (0o1777, 1001, 1000, 1000, True),  # someone else's file in my sticky directory
        (0o1777, 1001, 0, 0, True),  # root may
        (0o0777, 1001, 0, 1000, True),  # no sticky bit: the directory's write bit decides
    ],
)
def test_a_rename_in_a_sticky_directory_needs_the_owner(
    dir_mode: int, file_uid: int, dir_uid: int, euid: int, allowed: bool
) -> None:
    file = status(stat.S_IFREG | 0o666, file_uid)
    directory = status(stat.S_IFDIR | dir_mode, dir_uid)
    assert replaceable(file, directory, euid) is allowed


@pytest.fixture
def sticky_dir() -> Iterator[Path]:
    """A /tmp-like directory (mode 1777) owned by root, holding root's talk.jsonl (0666)."""
    directory = Path(tempfile.mkdtemp(prefix="ostream-sticky-", dir="/tmp"))
    try:
        directory.chmod(0o1777)
        (directory / "talk.jsonl").write_bytes(OLD)
        (directory / "talk.jsonl").chmod(0o666)
        yield directory
    finally:
        shutil.rmtree(directory)


def test_someone_elses_file_in_a_sticky_directory_is_refused_before_the_request(
    fake_ollama: FakeOllama, sticky_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = sticky_dir / "talk.jsonl"
    monkeypatch.setattr("ostream.history.os.geteuid", lambda: 1000)  # neither owner: root is
    result = chat(fake_ollama, history)
    assert result.exit_code == 2
    assert result.output == (
        f"ostream: error: --history: {history} belongs to another user in the sticky"
        f" directory {sticky_dir}, so it cannot be replaced\n"
    )
    assert fake_ollama.requests == []
    assert history.read_bytes() == OLD


def python_for(uid: int) -> list[str] | None:
    """A Python with ostream's dependencies that user `uid` can run, or None."""
    purelib = sysconfig.get_paths()["purelib"]
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            probe = subprocess.run(
                [python, "-c", "import ostream.cli"],
                env={"PYTHONPATH": f"{ROOT}:{purelib}", "PATH": "/usr/bin:/bin"},
                user=uid,
                capture_output=True,
                cwd="/",
            )
        except OSError:  # not allowed to run it
            continue
        if probe.returncode == 0:
            return [python]
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run ostream as another user")
@pytest.mark.parametrize("owner", ["root", "nobody"])
def test_a_real_user_in_a_sticky_directory(
    fake_ollama: FakeOllama, sticky_dir: Path, owner: str
) -> None:
    """As `nobody`, with the kernel deciding: root's file is refused up front, and
    nobody's own file is saved."""
    python = python_for(65534)
    if python is None:
        pytest.skip("no Python that user nobody can run")
    history = sticky_dir / "talk.jsonl"
    if owner == "nobody":
        os.chown(history, 65534, 65534)
    env = env_for(fake_ollama.url)
    env["PYTHONPATH"] += ":" + sysconfig.get_paths()["purelib"]
    result = subprocess.run(
        [*python, "-m", "ostream", "chat", "-m", "m", "--history", str(history), "hi"],
        capture_output=True,
        env=env,
        user=65534,
        group=65534,
        extra_groups=[],
        cwd="/",
        timeout=60,
    )
    if owner == "root":
        assert result.returncode == 2
        assert b"belongs to another user in the sticky directory" in result.stderr
        assert fake_ollama.requests == []
        assert history.read_bytes() == OLD
    else:
        assert result.returncode == 0, result.stderr
        assert lines(history)[2:] == TURN


# --- no room for a second copy: the new lines are appended ------------------------------------


def fail_on_temp_files(
    monkeypatch: pytest.MonkeyPatch, code: int, everywhere: bool = False
) -> None:
    """fsync fails with `code` for the temporary copy (or for every file)."""
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if everywhere or os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    monkeypatch.setattr("ostream.history.os.fsync", fsync)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_appends_the_turn_instead(
    fake_ollama: FakeOllama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    history = tmp_path / "talk.jsonl"
    history.write_bytes(OLD)
    fail_on_temp_files(monkeypatch, code)
    result = chat(fake_ollama, history)
    assert result.exit_code == 0, result.output
    assert history.read_bytes() == OLD + b"".join(
        json.dumps(m, separators=(",", ":")).encode() + b"\n" for m in TURN
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.jsonl"]


def test_a_save_that_still_fails_is_one_clean_line_exit_1(
    fake_ollama: FakeOllama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = tmp_path / "talk.jsonl"
    history.write_bytes(OLD)
    fail_on_temp_files(monkeypatch, errno.ENOSPC, everywhere=True)
    result = chat(fake_ollama, history)
    assert result.exit_code == 1
    assert result.stdout == "echo: hi\n"  # the answer was shown
    assert result.stderr == (
        f"ostream: error: --history: cannot save the turn in {history}: No space left on device\n"
    )
    assert history.read_bytes() == OLD  # the half-appended lines are cut off again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.jsonl"]


def test_a_failed_first_save_leaves_no_file(
    fake_ollama: FakeOllama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_on_temp_files(monkeypatch, errno.ENOSPC, everywhere=True)
    assert chat(fake_ollama, tmp_path / "new.jsonl").exit_code == 1
    assert list(tmp_path.iterdir()) == []


def can_mount_tmpfs() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"]
    return subprocess.run(probe, capture_output=True).returncode == 0


FILL = """
set -e
mount -t tmpfs -o size=64k tmpfs "$DIR"
head -c 36835 /dev/zero | tr '\\0' x | sed 's/.*/{"role":"user","content":"&"}/' > "$DIR/talk.jsonl"
head -c "$FILLER" /dev/zero > "$DIR/filler"
set +e
"$PYTHON" -m ostream chat -m m --history "$DIR/talk.jsonl" hi >/dev/null
echo "exit $?"
tail -c 200 "$DIR/talk.jsonl"
ls -a "$DIR"
"""


@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs root and mount namespaces")
@pytest.mark.parametrize(("filler", "saved"), [(24576, True), (28672, False)])
def test_a_real_full_disk(
    fake_ollama: FakeOllama, tmp_path: Path, filler: int, saved: bool
) -> None:
    """A 64 KiB file system holding a 36 KiB history: with one page left the turn is
    appended; with none it is exit 1 and the file is as it was."""
    env = env_for(fake_ollama.url, DIR=str(tmp_path), FILLER=str(filler), PYTHON=sys.executable)
    result = subprocess.run(
        ["unshare", "-m", "bash", "-c", FILL], capture_output=True, env=env, timeout=60
    )
    out = result.stdout.decode()
    if saved:
        assert out.startswith("exit 0\n"), result.stderr
        assert 'xxx"}\n{"role":"user","content":"hi"}\n' in out
        assert '{"role":"assistant","content":"echo: hi"}\n' in out
    else:
        assert out.startswith("exit 1\n")
        assert (
            result.stderr
            == (
                f"ostream: error: --history: cannot save the turn in {tmp_path}/talk.jsonl:"
                " No space left on device\n"
            ).encode()
        )
        assert out.split("\n")[1].endswith('xxx"}')  # unchanged: no new lines
    assert ".tmp" not in out  # no temporary copy left behind


# --- a torn last line is tolerated and repaired -----------------------------------------------


def test_a_last_line_cut_short_is_dropped_and_repaired(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    history = tmp_path / "talk.jsonl"
    history.write_bytes(OLD + b'{"role":"user","content":"cut sh')
    result = chat(fake_ollama, history)
    assert result.exit_code == 0, result.output
    assert fake_ollama.requests[-1].json["messages"] == [*lines_of(OLD), TURN[0]]
    assert history.read_bytes().startswith(OLD + b'{"role":"user","content":"hi"}\n')
    assert len(lines(history)) == 4


def test_a_last_line_without_a_newline_is_kept(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    history = tmp_path / "talk.jsonl"
    history.write_bytes(OLD.rstrip(b"\n"))
    assert chat(fake_ollama, history).exit_code == 0
    assert lines(history) == [*lines_of(OLD), *TURN]


def lines_of(data: bytes) -> list[Any]:
    return [json.loads(line) for line in data.splitlines()]


# --- overlapping runs keep every turn ----------------------------------------------------------


def test_parallel_turns_on_one_file_are_all_kept(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    """`xargs -P`: twelve runs at once on one history, each turn saved once."""
    history = tmp_path / "talk.jsonl"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ostream",
                "chat",
                "-m",
                "m",
                "--history",
                str(history),
                f"turn {i}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env_for(fake_ollama.url),
        )
        for i in range(12)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    saved = lines(history)
    assert len(saved) == 24
    users = sorted(m["content"] for m in saved if m["role"] == "user")
    assert users == sorted(f"turn {i}" for i in range(12))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.jsonl"]

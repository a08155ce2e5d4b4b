"""Regression tests for the third review: keys that cannot be headers, broken servers'
odd values, raw bodies cut short, stdout that cannot be written."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ostream.cli import app
from ostream.errors import ProtocolError
from ostream.output import Streams, Writer
from ostream.stream import Streamer
from tests.fake_ollama import Drop, FakeOllama, Reply, Send, error_reply, ndjson
from tests.proc import assert_quiet_stderr, env_for, run

runner = CliRunner()


def writer() -> Writer:
    import io

    return Writer(Streams(io.BytesIO(), io.BytesIO(), False, False, False))


def out(w: Writer) -> bytes:
    return w.streams.stdout.getvalue()  # type: ignore[attr-defined]


def chat_with_history(server: FakeOllama, history: Path) -> Any:
    env = {"OLLAMA_HOST": server.url, "NO_COLOR": "1"}
    return runner.invoke(app, ["chat", "-m", "m", "--history", str(history), "hi"], env=env)


def err(w: Writer) -> bytes:
    return w.streams.stderr.getvalue()  # type: ignore[attr-defined]


# --- a lone surrogate escape (\ud83d) from a broken server or proxy ------------------------


def test_lone_surrogate_in_text_becomes_a_replacement_character() -> None:
    w = writer()
    body = [b'{"response":"a\\ud83d","done":false}\n', b'{"response":"b","done":true}\n']
    Streamer("generate", w, jsonl=False, show_thinking=True, keep=False).run(body)
    assert out(w) == "a\ufffdb\n".encode()  # the last text carries the final newline


def test_lone_surrogate_in_thinking_becomes_a_replacement_character() -> None:
    w = writer()
    body = [b'{"response":"","thinking":"x\\udc00","done":false}\n{"response":"ok","done":true}']
    Streamer("generate", w, jsonl=False, show_thinking=True, keep=False).run(body)
    assert out(w) == b"ok\n"
    assert "x\ufffd".encode() in err(w)


def test_lone_surrogate_in_jsonl_keeps_its_escape() -> None:
    w = writer()
    spaced = b'{"response": "a\\ud83d", "done": true}\n'  # spaced: re-encoded, not passed
    Streamer("generate", w, jsonl=True, show_thinking=True, keep=False).run([spaced])
    assert out(w) == b'{"response":"a\\ud83d","done":true}\n'


def test_lone_surrogate_in_a_history_turn_is_saved(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    history = tmp_path / "talk.jsonl"
    lines = b'{"message":{"role":"assistant","content":"a\\ud83d"},"done":false}\n'
    lines += b'{"message":{"role":"assistant","content":""},"done":true}\n'
    fake_ollama.script(Reply(events=[Send(lines)]), path="/api/chat")
    result = chat_with_history(fake_ollama, history)
    assert result.exit_code == 0, result.output
    saved = [json.loads(x) for x in history.read_text().splitlines()]
    assert saved[-1] == {"role": "assistant", "content": "a\ud83d"}


# --- values of the wrong type in a server's lines ------------------------------------------


@pytest.mark.parametrize(
    ("lines", "stdout"),
    [
        ([{"response": "a", "thinking": 5, "done": False}, {"response": "b", "done": True}], b"ab"),
        ([{"response": "a", "error": None, "done": False}, {"response": "b", "done": True}], b"ab"),
        ([{"response": 7, "done": False}, {"response": "b", "done": True}], b"b"),
    ],
)
def test_odd_values_are_skipped_not_fatal(lines: list[dict[str, Any]], stdout: bytes) -> None:
    w = writer()
    body = [json.dumps(obj).encode() + b"\n" for obj in lines]
    reply = Streamer("generate", w, jsonl=False, show_thinking=True, keep=True).run(body)
    assert out(w) == stdout + b"\n"  # the last text carries the final newline
    assert reply.done is not None


CALL = {"function": {"name": "f", "arguments": {"x": 1}}}


def test_non_string_content_with_history_saves_the_strings(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    history = tmp_path / "talk.jsonl"
    fake_ollama.script(
        Reply(
            events=[
                Send(ndjson({"message": {"role": "assistant", "content": ["x"]}, "done": False})),
                Send(ndjson({"message": {"role": "assistant", "content": "ok"}, "done": False})),
                Send(ndjson({"message": {"role": "assistant", "tool_calls": CALL}, "done": True})),
            ]
        ),
        path="/api/chat",
    )
    result = chat_with_history(fake_ollama, history)
    assert result.exit_code == 0, result.output
    saved = [json.loads(x) for x in history.read_text().splitlines()]
    assert saved[-1] == {"role": "assistant", "content": "ok", "tool_calls": [CALL]}
    assert result.stdout.splitlines() == ["ok", '{"tool_call":{"name":"f","arguments":{"x":1}}}']


# --- --jsonl: every spacing a proxy may add is compacted -----------------------------------


@pytest.mark.parametrize(
    "block",
    [
        b'{"n":1, "response":"a","done":false}\n{"n":2, "response":"b","done":true}',
        b'{"n":1 ,"response":"a","done":false}\n{"n":2 ,"response":"b","done":true}',
        b'{"done" :true,"response":"a"}',
        b'{"response":"a","done":false}\n {"response":"b","done":true}',
        b'{"ok":[1, 2],"response":"a","done":true}',
    ],
)
def test_jsonl_compacts_any_spaced_line(block: bytes) -> None:
    w = writer()
    Streamer("generate", w, jsonl=True, show_thinking=True, keep=False).run([block + b"\n"])
    expected = b"".join(
        json.dumps(json.loads(x), separators=(",", ":")).encode() + b"\n"
        for x in block.split(b"\n")
    )
    assert out(w) == expected


# --- raw: bodies cut short -----------------------------------------------------------------


def test_raw_body_cut_mid_line_is_a_protocol_error(fake_ollama: FakeOllama) -> None:
    body = b'{"response":"a","done":false}\n{"response":"b","do'
    fake_ollama.script(Reply(chunked=False, events=[Send(body)]))
    result = run(["raw", "-d", '{"model":"x","prompt":"hi"}'], fake_ollama.url)
    assert result.returncode == 5, result.stderr
    assert result.stdout == body
    assert result.stderr == b"ostream: error: the stream ended before the model finished\n"


def test_raw_keeps_the_partial_line_when_the_connection_breaks(fake_ollama: FakeOllama) -> None:
    body = [b'{"response":"a","done":false}\n', b'{"response":"b","do']
    fake_ollama.script(Reply(events=[Send(body[0]), Send(body[1]), Drop()]))
    result = run(["raw", "-d", '{"model":"x","prompt":"hi"}'], fake_ollama.url)
    assert result.returncode == 5
    assert result.stdout == b"".join(body)
    assert b"broke mid-stream" in result.stderr


def test_raw_text_body_without_newline_is_not_judged(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(
        Reply(content_type="text/plain", chunked=False, events=[Send(b"Ollama is running")]),
        path="/",
    )
    result = run(["raw", "/"], fake_ollama.url)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"Ollama is running", b"")


def test_raw_data_that_is_not_utf8_is_a_usage_error(fake_ollama: FakeOllama) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ostream", "raw", "-d", b'{"a":"\xff"}'],
        capture_output=True,
        env=env_for(fake_ollama.url),
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr == b"ostream: error: -d: the body is not valid UTF-8\n"
    assert fake_ollama.requests == []


# --- stdout that cannot be written (a full disk) -------------------------------------------

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")


@needs_dev_full
@pytest.mark.parametrize(
    "args",
    [
        ["generate", "-m", "m", "a b c"],
        ["generate", "-m", "m", "--jsonl", "a b c"],
        ["raw", "-d", '{"model":"m","prompt":"a"}'],
        ["--version"],
        ["--help"],
        ["chat", "--help"],
    ],
)
def test_a_full_disk_is_one_line_and_exit_1(fake_ollama: FakeOllama, args: list[str]) -> None:
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [sys.executable, "-m", "ostream", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env_for(fake_ollama.url),
            timeout=30,
        )
    assert result.returncode == 1
    assert result.stderr == b"ostream: error: cannot write to stdout: No space left on device\n"
    assert_quiet_stderr(result.stderr)


# --- --history that could not be saved is refused before the answer ------------------------


def deny_write(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """os.access says `path` is not writable (as for a non-root user; root may write anyway)."""
    real_access = os.access
    monkeypatch.setattr(
        "ostream.conversation.os.access",
        lambda p, mode: not (os.fspath(p) == path and mode & os.W_OK) and real_access(p, mode),
    )


@pytest.mark.parametrize("where", ["file", "directory"])
def test_history_that_could_not_be_saved_is_refused_before_the_request(
    fake_ollama: FakeOllama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    history = tmp_path / "talk.jsonl"
    history.write_text('{"role":"user","content":"hi"}\n')
    before = history.read_bytes()
    if where == "file":
        deny_write(monkeypatch, os.path.realpath(history))
        message = f"--history: {history} is not writable"
    else:
        deny_write(monkeypatch, os.path.realpath(tmp_path))
        message = f"--history: cannot create files in {os.path.realpath(tmp_path)}"
    result = chat_with_history(fake_ollama, history)
    assert result.exit_code == 2
    assert result.output == f"ostream: error: {message}\n"
    assert fake_ollama.requests == []
    assert history.read_bytes() == before


def test_protocol_error_is_still_raised_for_a_stream_without_done() -> None:
    w = writer()
    with pytest.raises(ProtocolError):
        Streamer("generate", w, jsonl=False, show_thinking=True, keep=False).run(
            [b'{"response":"a","done":false}\n']
        )
    assert out(w) == b"a"


def test_history_that_is_not_a_regular_file_is_refused(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    fifo = tmp_path / "talk.fifo"
    os.mkfifo(fifo)
    result = chat_with_history(fake_ollama, fifo)
    assert result.exit_code == 2
    assert result.output == f"ostream: error: --history: {fifo} is not a regular file\n"
    assert fake_ollama.requests == []
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can update another user's file")
def test_history_updated_by_root_keeps_its_owner(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    history = tmp_path / "talk.jsonl"
    history.write_text('{"role":"user","content":"hi"}\n')
    os.chmod(history, 0o600)
    os.chown(history, 65534, 65534)
    result = chat_with_history(fake_ollama, history)
    assert result.exit_code == 0, result.output
    status = os.stat(history)
    assert (status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)) == (65534, 65534, 0o600)
    assert len(history.read_text().splitlines()) == 3


def test_a_404_not_naming_the_model_keeps_the_servers_words(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(error_reply(404, "adapter layer not found"))
    result = runner.invoke(
        app, ["generate", "-m", "llama3.1", "hi"], env={"OLLAMA_HOST": fake_ollama.url}
    )
    assert result.exit_code == 4
    assert result.output == (
        "ostream: error: adapter layer not found"
        " (HTTP 404 for model 'llama3.1'; try: ollama pull llama3.1)\n"
    )


def test_raw_body_file_in_utf16_is_refused(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    body = tmp_path / "u16.json"
    body.write_bytes('{"model":"m","prompt":"hi"}'.encode("utf-16"))
    result = runner.invoke(app, ["raw", "-d", f"@{body}"], env={"OLLAMA_HOST": fake_ollama.url})
    assert result.exit_code == 2
    assert result.output == "ostream: error: the request body is not valid UTF-8\n"
    assert fake_ollama.requests == []


def test_tls_failure_is_one_short_reason(fake_ollama: FakeOllama) -> None:
    url = fake_ollama.url.replace("http://", "https://")
    result = run(["generate", "-m", "m", "hi"], url)
    assert result.returncode == 3
    assert (
        result.stderr
        == f"ostream: error: TLS failure connecting to {url}: wrong version number\n".encode()
    )


@pytest.mark.parametrize(
    "host",
    ["http://ann:hunter2@host:99999", "http://ann:hun@ter2@host:1", "ann:it's\\hunter2@host"],
)
def test_host_password_is_not_echoed(host: str) -> None:
    result = run(["generate", "-m", "m", "--host", host, "hi"], "")
    assert result.returncode == 2
    assert b"hunter2" not in result.stderr and b"ter2" not in result.stderr
    assert b"***@host" in result.stderr
    assert b"user:password@ part is not supported" in result.stderr


def test_a_compressed_body_from_a_proxy_is_decompressed(fake_ollama: FakeOllama) -> None:
    import gzip

    lines = ndjson({"response": "squeezed", "done": False}, {"response": "", "done": True})
    fake_ollama.script(
        Reply(headers={"Content-Encoding": "gzip"}, events=[Send(gzip.compress(lines))])
    )
    result = run(["generate", "-m", "m", "hi"], fake_ollama.url)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"squeezed\n", b"")


def test_reader_watch_cleans_up_whenever_the_reader_leaves() -> None:
    """The reader leaving at any moment, also during the watch's own clean-up, never
    leaks its pipe or leaves its SIGUSR1 handler installed."""
    import signal

    from ostream.errors import Stop
    from ostream.signals import WAKE, reader_watch

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

"""Conversations: --messages and --history are read strictly (a refusal names the file,
the line and the field), what ostream writes it reads back, and a turn is saved only
when it is whole, to the file the user named."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from ostream.testing import FakeOllama, Reply, Send, ndjson
from tests.inproc import invoke, sent
from tests.proc import env_for, run

# --- a chat turn with --history and --messages, in-process ---------------------------------


def test_history_is_sent_and_the_turn_appended(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    history = tmp_path / "talk.jsonl"
    assert invoke(fake_ollama, "chat", "-m", "m", "--history", str(history), "One").exit_code == 0
    assert invoke(fake_ollama, "chat", "-m", "m", "--history", str(history), "Two").exit_code == 0
    assert sent(fake_ollama)["messages"] == [
        {"role": "user", "content": "One"},
        {"role": "assistant", "content": "echo: One"},
        {"role": "user", "content": "Two"},
    ]
    lines = [json.loads(line) for line in history.read_text().splitlines()]
    assert lines[-1] == {"role": "assistant", "content": "echo: Two"}
    assert len(lines) == 4


@pytest.mark.parametrize(
    ("model", "code"), [("error-mid", 1), ("truncated", 5), ("missing", 4), ("boom", 1)]
)
def test_failed_turn_leaves_history_byte_identical(
    fake_ollama: FakeOllama, tmp_path: Path, model: str, code: int
) -> None:
    history = tmp_path / "talk.jsonl"
    original = b'{"role":"user","content":"old"}\n{"role":"assistant","content":"reply"}'
    history.write_bytes(original)
    result = invoke(fake_ollama, "chat", "-m", model, "--history", str(history), "again")
    assert result.exit_code == code
    assert history.read_bytes() == original


def test_failed_first_turn_creates_no_history(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    history = tmp_path / "new.jsonl"
    assert (
        invoke(fake_ollama, "chat", "-m", "truncated", "--history", str(history), "x").exit_code
        == 5
    )
    assert not history.exists()
    assert list(tmp_path.iterdir()) == []


def test_history_that_is_a_json_array_is_refused(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    history = tmp_path / "h.json"
    history.write_text('[{"role":"user","content":"a"}]')
    result = invoke(fake_ollama, "chat", "-m", "m", "--history", str(history), "x")
    assert result.exit_code == 2
    assert "JSONL" in result.stderr
    assert fake_ollama.requests == []


def test_history_in_a_missing_directory_fails_before_sending(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    history = tmp_path / "nope" / "talk.jsonl"
    result = invoke(fake_ollama, "chat", "-m", "m", "--history", str(history), "x")
    assert result.exit_code == 2
    assert "no directory" in result.stderr
    assert fake_ollama.requests == []


def test_messages_file_jsonl_and_array(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    conversation = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    as_array = tmp_path / "c.json"
    as_array.write_text(json.dumps(conversation))
    as_lines = tmp_path / "c.jsonl"
    as_lines.write_text("".join(json.dumps(m) + "\n" for m in conversation))
    assert (
        invoke(fake_ollama, "chat", "-m", "m", "--messages", str(as_array), "next").exit_code == 0
    )
    assert sent(fake_ollama)["messages"] == [*conversation, {"role": "user", "content": "next"}]
    assert invoke(fake_ollama, "chat", "-m", "m", "--messages", str(as_lines)).exit_code == 0
    assert sent(fake_ollama)["messages"] == conversation


def test_messages_from_stdin(fake_ollama: FakeOllama) -> None:
    result = invoke(
        fake_ollama,
        "chat",
        "-m",
        "m",
        "--messages",
        "-",
        input='[{"role":"user","content":"from stdin"}]',
    )
    assert result.exit_code == 0
    assert result.stdout == "echo: from stdin\n"


def test_messages_and_history_together_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(None, "chat", "-m", "m", "--messages", "-", "--history", "h.jsonl", "x")
    assert result.exit_code == 2
    assert "together" in result.stderr


# --- --messages ----------------------------------------------------------------------------


def test_messages_from_empty_stdin_without_words_is_a_usage_error(
    fake_ollama: FakeOllama,
) -> None:
    result = run(["chat", "-m", "m", "--messages", "-"], fake_ollama.url, input=b"")
    assert result.returncode == 2
    assert fake_ollama.requests == []


def test_messages_from_closed_stdin_is_a_usage_error(fake_ollama: FakeOllama) -> None:
    result = run(["chat", "-m", "m", "--messages", "-", "hi"], fake_ollama.url, close_fd=0)
    assert result.returncode == 2
    assert fake_ollama.requests == []


# --- --history -----------------------------------------------------------------------------


def test_history_through_a_symlink_updates_the_target_and_keeps_the_link(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    real = tmp_path / "real.jsonl"
    real.write_bytes(b'{"role":"user","content":"a"}\n{"role":"assistant","content":"b"}\n')
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    result = run(["chat", "-m", "m", "--history", str(link), "hi"], fake_ollama.url)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    assert len(real.read_bytes().splitlines()) == 4


# --- numbers JSON cannot hold --------------------------------------------------------------


@pytest.mark.parametrize("option", ["--messages", "--history"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e400"])
def test_a_non_finite_number_in_a_conversation_file_is_a_usage_error(
    fake_ollama: FakeOllama, tmp_path: Path, option: str, value: str
) -> None:
    conversation = tmp_path / "talk.jsonl"
    conversation.write_text('{"role":"user","content":"x","n":' + value + "}\n")
    result = run(["chat", "-m", "m", option, str(conversation), "hi"], fake_ollama.url)
    assert result.returncode == 2, result.stderr
    assert b"unexpected" not in result.stderr
    assert fake_ollama.requests == []


def chat_with_history(server: FakeOllama, history: Path) -> Result:
    return invoke(server, "chat", "-m", "m", "--history", str(history), "hi")


# --- the saved turn holds what the server sent ---------------------------------------------


CALL = {"function": {"name": "f", "arguments": {"x": 1}}}


def test_content_that_is_not_a_string_is_skipped_and_the_strings_and_calls_saved(
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


# --- a history that could not be saved is refused before the request -----------------------


def deny_write(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """os.access says `path` is not writable (as for a non-root user; root may write anyway)."""
    real_access = os.access
    monkeypatch.setattr(
        "ostream.history.os.access",
        lambda p, mode: not (os.fspath(p) == path and mode & os.W_OK) and real_access(p, mode),
    )


@pytest.mark.parametrize("where", ["file", "directory"])
def test_a_history_that_could_not_be_saved_is_refused_before_the_request(
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


def test_a_history_that_is_not_a_regular_file_is_refused(
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
def test_a_history_updated_by_root_keeps_its_owner_and_mode(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    history = tmp_path / "talk.jsonl"
    history.write_text('{"role":"user","content":"hi"}\n')
    os.chmod(history, 0o600)
    os.chown(history, 65534, 65534)
    result = chat_with_history(fake_ollama, history)
    assert result.exit_code == 0, result.output
    status = os.stat(history)
    assert (status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)) == (65534, 65534, 0o600)
    assert len(history.read_text().splitlines()) == 3


# --- what ostream writes it reads back; refusals name file, line and field ------------------

CONVERSATION = [
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
]


def sent_messages(server: FakeOllama) -> Any:
    return server.requests[-1].json["messages"]


# --- a reply with a lone surrogate: stored as shown, and read back ---------------------------


def test_a_reply_with_a_lone_surrogate_is_stored_as_shown_and_read_back(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    history = tmp_path / "talk.jsonl"
    lines = b'{"message":{"role":"assistant","content":"a\\ud83d"},"done":false}\n'
    lines += b'{"message":{"role":"assistant","content":"b"},"done":true}\n'
    fake_ollama.script(Reply(events=[Send(lines)]), path="/api/chat")
    first = invoke(fake_ollama, "chat", "-m", "m", "--history", str(history), "hi")
    assert first.stdout == "a\ufffdb\n"
    assert history.read_bytes().splitlines()[-1] == (
        '{"role":"assistant","content":"a\ufffdb"}'.encode()
    )
    second = invoke(fake_ollama, "chat", "-m", "m", "--history", str(history), "again")
    assert second.exit_code == 0, second.output
    assert sent_messages(fake_ollama)[1] == {"role": "assistant", "content": "a\ufffdb"}


@pytest.mark.parametrize("option", ["--history", "--messages"])
def test_a_lone_surrogate_escape_written_by_0_1_0_is_read_as_u_fffd(
    fake_ollama: FakeOllama, tmp_path: Path, option: str
) -> None:
    talk = tmp_path / "talk.jsonl"
    talk.write_bytes(b'{"role":"user","content":"hi"}\n{"role":"assistant","content":"a\\ud83d"}\n')
    result = invoke(fake_ollama, "chat", "-m", "m", option, str(talk), "next")
    assert result.exit_code == 0, result.output
    assert sent_messages(fake_ollama)[1] == {"role": "assistant", "content": "a\ufffd"}


# --- refusals name the file, the line and the field --------------------------------------------


@pytest.mark.parametrize("option", ["--history", "--messages"])
@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"role":"user","content":"caf\xe9"}', "content is not valid UTF-8"),
        (b'{"role":"user","n":1,"images":["ok","\xff"]}', "images[1] is not valid UTF-8"),
        (
            b'{"role":"user","tool_calls":[{"f":{"x\xff":1}}]}',
            "a key in tool_calls[0].f is not valid UTF-8",
        ),
        (
            b'{"role":"user","content":"x"',
            "invalid JSON: Expecting ',' delimiter (line 4, column 1)",
        ),
        (b'{"role":"user","n":NaN}', "invalid JSON: NaN is not JSON"),
        (b'["user","hi"]', "a message must be an object with a 'role'"),
        (b'{"content":"no role"}', "a message must be an object with a 'role'"),
    ],
)
def test_a_bad_line_is_named(
    fake_ollama: FakeOllama, tmp_path: Path, option: str, line: bytes, message: str
) -> None:
    talk = tmp_path / "talk.jsonl"
    talk.write_bytes(b'{"role":"user","content":"a"}\n\n' + line + b"\n")
    result = invoke(fake_ollama, "chat", "-m", "m", option, str(talk), "next")
    assert result.exit_code == 2
    assert result.output == f"ostream: error: {option} {talk}:3: {message}\n"
    assert fake_ollama.requests == []


def test_messages_from_stdin_are_named_as_such(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "chat", "-m", "m", "--messages", "-", input=b'{"role":"user"}\n{')
    assert result.exit_code == 2
    assert result.output.startswith("ostream: error: --messages -:2: invalid JSON: ")


def test_a_bad_item_of_a_json_array_is_named_by_its_line(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    talk = tmp_path / "talk.json"
    talk.write_text('[\n  {"role": "user", "content": "a"},\n  {"content": "b"}\n]\n')
    result = invoke(fake_ollama, "chat", "-m", "m", "--messages", str(talk))
    assert result.exit_code == 2
    assert result.output == (
        f"ostream: error: --messages {talk}:3: a message must be an object with a 'role'\n"
    )


# --- layouts: jq's pretty output, arrays, a byte order mark ------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "\n".join(json.dumps(m, indent=2) for m in CONVERSATION) + "\n",  # jq '.[]' file.json
        json.dumps(CONVERSATION, indent=2) + "\n",  # jq . file.json
        "\r\n".join(json.dumps(m) for m in CONVERSATION) + "\r\n",  # CRLF line ends
    ],
    ids=["pretty-objects", "pretty-array", "crlf"],
)
def test_messages_in_every_layout_jq_writes_are_read(
    fake_ollama: FakeOllama, tmp_path: Path, text: str
) -> None:
    talk = tmp_path / "talk.json"
    talk.write_text(text)
    result = invoke(fake_ollama, "chat", "-m", "m", "--messages", str(talk), "And Italy?")
    assert result.exit_code == 0, result.output
    assert sent_messages(fake_ollama) == [*CONVERSATION, {"role": "user", "content": "And Italy?"}]


@pytest.mark.parametrize("option", ["--history", "--messages", "--messages -"])
def test_a_bom_at_the_start_of_a_conversation_is_dropped(
    fake_ollama: FakeOllama, tmp_path: Path, option: str
) -> None:
    talk = tmp_path / "talk.jsonl"
    data = b"\xef\xbb\xbf" + b"".join(json.dumps(m).encode() + b"\n" for m in CONVERSATION)
    talk.write_bytes(data)
    args = ["--messages", "-"] if option == "--messages -" else [option, str(talk)]
    result = invoke(fake_ollama, "chat", "-m", "m", *args, "next", input=data)
    assert result.exit_code == 0, result.output
    assert sent_messages(fake_ollama)[:2] == CONVERSATION


# --- --format and -o values --------------------------------------------------------------------


def test_a_format_file_that_is_not_utf8_is_named_with_its_line(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    schema = tmp_path / "schema.json"
    schema.write_bytes(b'{\n  "description": "caf\xe9"\n}\n')
    result = invoke(fake_ollama, "generate", "-m", "m", "--format", f"@{schema}", "hi")
    assert result.exit_code == 2
    assert result.output == f"ostream: error: --format {schema}:2: not valid UTF-8 (byte 23)\n"


def test_bad_json_in_a_format_file_is_named_with_its_line(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text('{\n  "type": "object",\n  "required": [}\n')
    result = invoke(fake_ollama, "generate", "-m", "m", "--format", f"@{schema}", "hi")
    assert result.exit_code == 2
    assert result.output == (
        f"ostream: error: --format {schema}:3: invalid JSON: Expecting value (column 16)\n"
    )


def test_a_lone_surrogate_escape_in_format_and_options_is_sent_as_u_fffd(
    fake_ollama: FakeOllama,
) -> None:
    result = invoke(
        fake_ollama,
        "generate",
        "-m",
        "m",
        "--format",
        '{"description":"a\\udc00"}',
        "-o",
        'stop=["\\ud83d"]',
        "hi",
    )
    assert result.exit_code == 0, result.output
    body = fake_ollama.requests[-1].json
    assert (body["format"], body["options"]) == ({"description": "a\ufffd"}, {"stop": ["\ufffd"]})


WHATEVER_THE_LOCALE = b" (arguments are read as UTF-8 whatever the locale)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([b"-o", b"stop=caf\xe9"], b"-o stop is not valid UTF-8" + WHATEVER_THE_LOCALE),
        (
            [b"--format", b'{"description":"caf\xe9"}'],
            b"--format is not valid UTF-8" + WHATEVER_THE_LOCALE,
        ),
    ],
)
def test_option_values_that_are_not_utf8_are_named(
    fake_ollama: FakeOllama, args: list[bytes], message: bytes
) -> None:
    result = subprocess.run(
        [sys.executable.encode(), b"-m", b"ostream", b"generate", b"-m", b"m", *args, b"hi"],
        capture_output=True,
        env=env_for(fake_ollama.url, LC_ALL="C.UTF-8"),
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == b"ostream: error: " + message + b"\n"
    assert fake_ollama.requests == []

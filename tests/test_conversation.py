"""Conversation files (--history, --messages): what ostream writes it reads back, other
layouts jq makes are read, and a refusal names the file, the line and the field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ostream.cli import app
from tests.fake_ollama import FakeOllama, Reply, Send
from tests.proc import env_for

runner = CliRunner()
CONVERSATION = [
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
]


def invoke(server: FakeOllama, *args: str, input: bytes | None = None) -> Any:
    env = {"OLLAMA_HOST": server.url, "NO_COLOR": "1", "OSTREAM_MODEL": ""}
    return runner.invoke(app, list(args), input=input, env=env)


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
    assert result.output == f"ostream: error: --format {schema}:2: not valid UTF-8 (byte 23)\n"


def test_bad_json_in_a_format_file_is_named_with_its_line(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text('{\n  "type": "object",\n  "required": [}\n')
    result = invoke(fake_ollama, "generate", "-m", "m", "--format", f"@{schema}", "hi")
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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([b"-o", b"stop=caf\xe9"], b"-o stop: not valid UTF-8"),
        ([b"--format", b'{"description":"caf\xe9"}'], b"--format: not valid UTF-8"),
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

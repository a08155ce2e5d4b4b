"""In-process: every option reaches the request body exactly, outputs and exit codes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ostream import __version__
from ostream.testing import FakeOllama, Reply, Send, chat_chunks, error_reply, gen_chunks, ndjson
from tests.inproc import invoke, sent


def test_version() -> None:
    result = invoke(None, "--version")
    assert result.exit_code == 0
    assert result.stdout == f"ostream {__version__}\n"


def test_generate_sends_every_option_exactly(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG fake")
    schema = tmp_path / "schema.json"
    schema.write_text('{"type":"object"}')
    result = invoke(
        fake_ollama,
        "generate",
        "-m",
        "llama3.1",
        "-s",
        "Be brief.",
        "-o",
        "temperature=0",
        "-o",
        'stop=["END"]',
        "-o",
        "name=x",
        "--format",
        f"@{schema}",
        "--think",
        "high",
        "--keep-alive",
        "1h30m",
        "--image",
        str(image),
        "Tell",
        "me",
        "a story",
    )
    assert result.exit_code == 0, result.output
    assert sent(fake_ollama) == {
        "model": "llama3.1",
        "stream": True,
        "prompt": "Tell me a story",
        "system": "Be brief.",
        "options": {"temperature": 0, "stop": ["END"], "name": "x"},
        "format": {"type": "object"},
        "think": "high",
        "keep_alive": "1h30m",
        "images": [base64.b64encode(b"\x89PNG fake").decode()],
    }
    assert result.stdout == "echo: Tell me a story\n"


def test_minimal_body_has_only_model_prompt_stream(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", "hi")
    assert result.exit_code == 0
    assert sent(fake_ollama) == {"model": "m", "stream": True, "prompt": "hi"}


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("-1", -1), ("5m", "5m")])
def test_keep_alive_numbers_are_numbers(
    fake_ollama: FakeOllama, value: str, expected: object
) -> None:
    assert invoke(fake_ollama, "generate", "-m", "m", "--keep-alive", value, "x").exit_code == 0
    assert sent(fake_ollama)["keep_alive"] == expected


def test_format_json_and_think_false(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", "--format", "json", "--think", "false", "x")
    assert result.exit_code == 0
    assert sent(fake_ollama)["format"] == "json"
    assert sent(fake_ollama)["think"] is False


def test_model_from_environment(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "hi", env={"OSTREAM_MODEL": "envmodel"})
    assert result.exit_code == 0
    assert sent(fake_ollama)["model"] == "envmodel"


def test_missing_model_is_a_usage_error(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "hi")
    assert result.exit_code == 2
    assert result.stderr == "ostream: error: no model: pass -m NAME or set OSTREAM_MODEL\n"
    assert fake_ollama.requests == []


def test_stdin_then_words(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", "Summarize", input="line 1\nline 2\n")
    assert result.exit_code == 0
    assert sent(fake_ollama)["prompt"] == "line 1\nline 2\n\nSummarize"


def test_no_prompt_is_a_usage_error_and_nothing_is_sent(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", input="")
    assert result.exit_code == 2
    assert result.stderr.startswith("ostream: error: no prompt")
    assert fake_ollama.requests == []


def test_non_utf8_stdin_is_a_usage_error(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", input=b"caf\xe9")
    assert result.exit_code == 2
    assert "not valid UTF-8" in result.stderr
    assert fake_ollama.requests == []


def test_api_key_is_sent_as_bearer_and_never_printed(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", "hi", env={"OLLAMA_API_KEY": "s3cret"})
    assert result.exit_code == 0
    assert fake_ollama.requests[-1].headers["authorization"] == "Bearer s3cret"
    assert "s3cret" not in result.output


def test_no_authorization_header_without_a_key(fake_ollama: FakeOllama) -> None:
    assert invoke(fake_ollama, "generate", "-m", "m", "hi").exit_code == 0
    assert "authorization" not in fake_ollama.requests[-1].headers


def test_host_option_wins_over_environment(fake_ollama: FakeOllama) -> None:
    result = invoke(
        None,
        "generate",
        "-m",
        "m",
        "--host",
        fake_ollama.url,
        "hi",
        env={"OLLAMA_HOST": "http://127.0.0.1:9"},
    )
    assert result.exit_code == 0
    assert len(fake_ollama.requests) == 1


def test_bad_host_is_a_usage_error() -> None:
    result = invoke(None, "generate", "-m", "m", "--host", "http://h:99999", "hi")
    assert result.exit_code == 2
    assert "invalid host" in result.stderr


def test_done_line_text_and_thinking(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(Reply(events=gen_chunks(["Hello"], thinking=["hmm"], done_text=" there")))
    result = invoke(fake_ollama, "generate", "-m", "m", "hi")
    assert result.exit_code == 0
    assert result.stdout == "Hello there\n"
    assert "hmm" in result.stderr
    assert "hmm" not in result.stdout


def test_hide_thinking(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(Reply(events=gen_chunks(["Hello"], thinking=["hmm"])))
    result = invoke(fake_ollama, "generate", "-m", "m", "--hide-thinking", "hi")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "Hello\n", "")


def test_jsonl_writes_every_object_and_done_last(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", "--jsonl", "a b")
    assert result.exit_code == 0
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert "".join(o["response"] for o in objects) == "echo: a b"
    assert objects[-1]["done"] is True
    assert all(o["done"] is False for o in objects[:-1])
    assert result.stdout.encode() == fake_ollama.requests[-1].sent_bytes


def test_verbose_prints_statistics_on_stderr(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", "-v", "hi")
    assert result.exit_code == 0
    assert result.stdout == "echo: hi\n"
    assert "eval count:" in result.stderr
    assert "eval rate:" in result.stderr
    assert "total duration:" in result.stderr


def test_chat_sends_system_then_user(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    tools = tmp_path / "tools.json"
    tools.write_text('[{"type":"function","function":{"name":"get_weather"}}]')
    result = invoke(fake_ollama, "chat", "-m", "m", "-s", "sys", "--tools", str(tools), "Hi")
    assert result.exit_code == 0
    assert result.stdout == "echo: Hi\n"
    body = sent(fake_ollama)
    assert body["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "Hi"},
    ]
    assert body["tools"][0]["function"]["name"] == "get_weather"


def test_chat_tool_calls_are_printed_as_json_lines(fake_ollama: FakeOllama) -> None:
    calls = [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    fake_ollama.script(Reply(events=chat_chunks([], tool_calls=calls)), path="/api/chat")
    result = invoke(fake_ollama, "chat", "-m", "m", "weather?")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}
    }


def test_unknown_option_is_one_line_exit_2() -> None:
    result = invoke(None, "generate", "--bogus")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("ostream: error: No such option: --bogus")


QUOTE_HINT = "(if it is part of the prompt, quote the whole prompt or put -- before its words)"


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["generate", "-m", "m", "what", "is", "-1", "plus", "2"], "-1"),
        (["generate", "-m", "m", "is", "-0.5", "small"], "-0"),
        (["chat", "-m", "m", "explain", "rm", "-rf"], "-r"),
    ],
)
def test_a_prompt_word_taken_for_an_option_suggests_quoting_or_dashes(
    args: list[str], word: str
) -> None:
    result = invoke(None, *args)
    assert result.exit_code == 2
    assert result.stderr == f"ostream: error: No such option: {word} {QUOTE_HINT}\n"


def test_after_dashes_a_negative_number_is_part_of_the_prompt(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", "--", "what", "is", "-1", "plus", "2")
    assert result.exit_code == 0, result.stderr
    assert sent(fake_ollama)["prompt"] == "what is -1 plus 2"


def test_a_mistyped_long_option_still_points_at_help() -> None:
    result = invoke(None, "generate", "--hots", "x")
    assert result.exit_code == 2
    assert result.stderr == (
        "ostream: error: No such option: --hots (Possible options: --host)"
        " (see 'ostream generate --help')\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "1_0"], "--timeout takes a number of seconds greater than 0, like 30"),
        (["--timeout", "0"], "--timeout takes a number of seconds greater than 0, like 30"),
        (["--timeout", "abc"], "--timeout takes a number of seconds greater than 0, like 30"),
        (["--retries", "-1"], "--retries takes a whole number, 0 or more"),
    ],
)
def test_number_options_are_refused_in_ostream_words(
    fake_ollama: FakeOllama, args: list[str], message: str
) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", *args, "hi")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"ostream: error: {message}")
    assert "range" not in result.stderr and "Invalid value" not in result.stderr
    assert fake_ollama.requests == []


def test_help_shows_no_click_ranges() -> None:
    result = invoke(None, "generate", "--help")
    assert result.exit_code == 0
    assert "--timeout" in result.stdout and "x>=" not in result.stdout


def test_error_statuses_in_jsonl_are_written_as_a_line(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "missing", "--jsonl", "x")
    assert result.exit_code == 4
    assert json.loads(result.stdout) == {"error": "model 'missing' not found"}


def test_multibyte_split_and_control_chars_in_a_pipe(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "split-utf8", "x")
    assert result.exit_code == 0
    assert result.stdout == "héllo wörld ✓ 🎉\n"
    fake_ollama.script(Reply(events=[Send(ndjson({"response": "\x1b[2J", "done": True}))]))
    result = invoke(fake_ollama, "generate", "-m", "m", "x")
    assert (result.exit_code, result.stdout) == (0, "\x1b[2J\n")


def test_no_arguments_shows_help_on_stderr_exit_2() -> None:
    result = invoke(None)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Usage: ostream")
    assert "generate" in result.stderr


def test_empty_prompt_words_are_no_prompt(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", "")
    assert result.exit_code == 2
    assert fake_ollama.requests == []


def test_redirect_is_an_error_naming_the_location(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(
        Reply(
            status=302, headers={"Location": "https://elsewhere/api/generate"}, content_length=True
        )
    )
    result = invoke(fake_ollama, "generate", "-m", "m", "x")
    assert result.exit_code == 1
    assert "redirects to https://elsewhere/api/generate" in result.stderr
    assert len(fake_ollama.requests) == 1


def test_a_404_not_naming_the_model_keeps_the_servers_words(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(error_reply(404, "adapter layer not found"))
    result = invoke(fake_ollama, "generate", "-m", "llama3.1", "hi")
    assert result.exit_code == 4
    assert result.output == (
        "ostream: error: adapter layer not found"
        " (HTTP 404 for model 'llama3.1'; try: ollama pull llama3.1)\n"
    )


# --------------------------------------------------------------------------- --history names


def test_history_dash_is_refused_and_creates_no_file(
    fake_ollama: FakeOllama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ostream.cli import main
    from tests.inproc import environment, err

    monkeypatch.chdir(tmp_path)
    env = environment(fake_ollama.url)
    assert main(["chat", "-m", "m", "--history", "-", "hi"], env=env) == 2
    assert b"--history takes a file" in err(env) and b"--messages -" in err(env)
    assert list(tmp_path.iterdir()) == []
    assert fake_ollama.requests == []


def test_history_with_an_empty_name_says_so(fake_ollama: FakeOllama) -> None:
    from ostream.cli import main
    from tests.inproc import environment, err

    env = environment(fake_ollama.url)
    assert main(["chat", "-m", "m", "--history", "", "hi"], env=env) == 2
    assert err(env) == b"ostream: error: --history: the file name is empty\n"
    assert fake_ollama.requests == []

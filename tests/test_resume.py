"""--resume: a stream that breaks after text was written is continued, not lost."""

from __future__ import annotations

from ostream.resume import continuation
from ostream.testing import FakeOllama, Reply, Send, error_reply
from ostream.testing.events import Drop
from ostream.testing.replies import chat_lines
from tests.inproc import invoke


def test_generate_resumes_a_cut_reply_with_the_partial_text(fake_ollama: FakeOllama) -> None:
    result = invoke(
        fake_ollama, "generate", "-m", "cut", "-s", "Be brief.", "--resume", "one two three four"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: one two three four\n"
    assert "broke after 9 characters; resuming (1/2)" in result.stderr
    first, second = fake_ollama.requests
    assert first.path == "/api/generate"
    assert second.path == "/api/chat"
    assert second.json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "one two three four"},
        {"role": "assistant", "content": "echo: one"},
    ]
    assert second.json["think"] is False


def test_chat_resumes_and_history_keeps_the_whole_reply(fake_ollama: FakeOllama, tmp_path) -> None:
    history = tmp_path / "talk.jsonl"
    result = invoke(
        fake_ollama,
        "chat",
        "-m",
        "cut",
        "--think",
        "high",
        "-o",
        "fake_tokens_before=3",
        "--history",
        str(history),
        "--resume",
        "a b c d e",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: a b c d e\n"
    second = fake_ollama.requests[1].json
    assert second["messages"][-1] == {"role": "assistant", "content": "echo: a b"}
    assert second["options"] == {"fake_tokens_before": 3}
    assert (second["think"], fake_ollama.requests[0].json["think"]) == (False, "high")
    assert (
        history.read_text().splitlines()[-1] == '{"role":"assistant","content":"echo: a b c d e"}'
    )


def test_without_resume_a_cut_reply_is_exit_5(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "cut", "one two three")
    assert (result.exit_code, result.stdout) == (5, "echo: one\n")
    assert len(fake_ollama.requests) == 1


def test_a_server_that_keeps_breaking_is_resumed_retries_times_then_exit_5(
    fake_ollama: FakeOllama,
) -> None:
    result = invoke(
        fake_ollama, "chat", "-m", "drop", "--resume", "--retries", "2", "a b c d e f g h"
    )
    assert result.exit_code == 5
    # Each request writes two more words; only the new text is written.
    assert result.stdout == "echo: a b c d e\n"
    assert len(fake_ollama.requests) == 3
    assert "resuming (2/2)" in result.stderr


def test_a_server_that_will_not_continue_is_exit_5_with_its_reason(
    fake_ollama: FakeOllama,
) -> None:
    fake_ollama.script(Reply(events=[*[Send(x) for x in _few()], Drop()]), path="/api/chat")
    fake_ollama.script(error_reply(400, "cannot prefill while thinking"), path="/api/chat")
    result = invoke(fake_ollama, "chat", "-m", "m", "--resume", "hi")
    assert result.exit_code == 5
    assert result.stdout == "Hello there\n"
    assert "did not continue: cannot prefill while thinking" in result.stderr


def test_nothing_written_nothing_resumed(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(Reply(events=[Drop()]), path="/api/chat")
    result = invoke(fake_ollama, "chat", "-m", "m", "--resume", "hi")
    assert result.exit_code == 5
    assert len(fake_ollama.requests) == 1


def test_resume_with_jsonl_is_a_usage_error(fake_ollama: FakeOllama) -> None:
    for command in ("generate", "chat"):
        result = invoke(fake_ollama, command, "-m", "m", "--resume", "--jsonl", "hi")
        assert result.exit_code == 2
        assert "--resume" in result.stderr
    assert not fake_ollama.requests


def test_continuation_of_a_chat_keeps_its_messages_and_tools() -> None:
    body = {
        "model": "m",
        "stream": True,
        "think": True,
        "tools": [{"type": "function"}],
        "messages": [{"role": "user", "content": "hi"}],
    }
    new = continuation("chat", body, "Hel")
    assert new["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hel"},
    ]
    assert (new["tools"], new["think"], body["think"]) == ([{"type": "function"}], False, True)


def _few() -> list[bytes]:
    return chat_lines(["Hello", " there"], model="m")[:-1]

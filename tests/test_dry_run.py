"""--dry-run: the request as one JSON line (method, URL, body), nothing sent, exit 0,
the API key never shown."""

from __future__ import annotations

import json
from pathlib import Path

from ostream.testing import FakeOllama
from tests.inproc import invoke
from tests.proc import closed_port, env_for, run

KEY = {"OLLAMA_API_KEY": "s3cret-key"}


def shown(result_stdout: str) -> dict[str, object]:
    [line] = result_stdout.splitlines()
    request: dict[str, object] = json.loads(line)
    return request


def test_generate(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", "-s", "S", "hi", "--dry-run", env=KEY)
    assert result.exit_code == 0, result.stderr
    assert shown(result.stdout) == {
        "method": "POST",
        "url": fake_ollama.url + "/api/generate",
        "body": {"model": "m", "stream": True, "prompt": "hi", "system": "S"},
    }
    assert "s3cret" not in result.stdout + result.stderr
    assert not fake_ollama.requests


def test_chat_with_history_sends_and_saves_nothing(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    history = tmp_path / "talk.jsonl"
    history.write_text('{"role":"user","content":"a"}\n{"role":"assistant","content":"b"}\n')
    before = history.read_bytes()
    args = ["chat", "-m", "m", "--history", str(history), "--dry-run", "c"]
    result = invoke(fake_ollama, *args, env=KEY)
    assert result.exit_code == 0, result.stderr
    assert shown(result.stdout) == {
        "method": "POST",
        "url": fake_ollama.url + "/api/chat",
        "body": {
            "model": "m",
            "stream": True,
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
            ],
        },
    }
    assert history.read_bytes() == before
    assert not fake_ollama.requests


def test_raw(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "raw", "/api/show", "-d", '{"model": "m"}', "--dry-run", env=KEY)
    assert result.exit_code == 0, result.stderr
    assert shown(result.stdout) == {
        "method": "POST",
        "url": fake_ollama.url + "/api/show",
        "body": {"model": "m"},
    }
    result = invoke(fake_ollama, "raw", "api/tags", "--dry-run")
    assert shown(result.stdout) == {
        "method": "GET",
        "url": fake_ollama.url + "/api/tags",
        "body": None,
    }
    assert not fake_ollama.requests


def test_usage_errors_still_count(fake_ollama: FakeOllama) -> None:
    assert invoke(fake_ollama, "generate", "--dry-run", "hi").exit_code == 2  # no model
    assert invoke(fake_ollama, "raw", "-d", "{bad", "--dry-run").exit_code == 2


def test_no_server_needed_in_a_real_process(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    out = tmp_path / "answer.txt"
    result = run(
        ["generate", "-m", "m", "--dry-run", "--output", str(out), "hi"],
        url,
        env=env_for(url, **KEY),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["url"] == url + "/api/generate"
    assert b"s3cret" not in result.stdout + result.stderr
    assert not out.exists()


def test_answer_options_are_checked_too(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", "-x", "--jsonl", "--dry-run", "hi")
    assert result.exit_code == 2
    assert "text mode" in result.stderr
    result = invoke(fake_ollama, "chat", "-m", "m", "-x", "--dry-run", "hi")
    assert result.exit_code == 0  # the request, not an extract of it
    assert shown(result.stdout)["method"] == "POST"

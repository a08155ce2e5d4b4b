"""ostream batch -p PRESET / --var and --dry-run (CONTRACT.md, "Presets and small
conveniences" and "batch"): the preset fills what a job leaves out, renders --text
lines; a dry run shows the expanded jobs and sends nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from ostream.testing import FakeOllama
from tests.inproc import invoke
from tests.proc import env_for, read_until, spawn
from tests.test_completion import offered

# The README's summarise preset, as a user would copy it (a system prompt).
SUMMARISE = """---
description: Three bullet points
---
Summarise the text you are given in three short bullet points. Keep names,
numbers and dates exactly as they are.
"""
# A prompt-kind one: the body places each --text line.
DIGEST = """---
description: Summarise a text in a few sentences
vars: {"length": "three sentences"}
---
Summarise the following text in {{length}}. Keep names and figures exact.

{{input}}
"""
TERSE = """---
model: preset-model
options: {"temperature": 0.2, "seed": 7}
think: false
keep-alive: 10m
tools: [{"type": "function", "function": {"name": "f"}}]
vars: {"tone": null}
---
Answer in a {{tone}} tone. {{not_a_var}} and $HOME stay.
"""


def lines(*objs: Any) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


@pytest.fixture
def presets(tmp_path: Path) -> Path:
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "summarise.md").write_text(SUMMARISE, encoding="utf-8")
    (folder / "terse.md").write_text(TERSE, encoding="utf-8")
    (folder / "digest.md").write_text(DIGEST, encoding="utf-8")
    return folder


def batch(server: FakeOllama, presets: Path, *args: str, input: str = "", **env: str) -> Result:
    environ = {"OSTREAM_HOSTS": server.url, "OSTREAM_PRESETS": str(presets), **env}
    return invoke(None, "batch", *args, input=input, env=environ)


def sent(server: FakeOllama, path: str) -> list[dict[str, Any]]:
    return [r.json for r in server.requests if r.path == path]


def shown(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout_bytes.splitlines()]


# --------------------------------------------------------------------------- -p in a run


def test_a_system_preset_fills_what_jobs_leave_out_and_the_job_wins(
    fake_ollama: FakeOllama, presets: Path
) -> None:
    user = {"role": "user", "content": "hi"}
    jobs = lines(
        {"custom_id": "g", "prompt": "a"},
        {
            "custom_id": "own",
            "prompt": "b",
            "model": "llama3.1",
            "system": "Mine.",
            "think": True,
            "options": {"seed": 1},
        },
        {"custom_id": "c", "messages": [user]},
        {"custom_id": "cs", "messages": [{"role": "system", "content": "S"}, user], "tools": []},
    )
    result = batch(
        fake_ollama, presets, "-p", "terse", "--var", "tone=dry", "-m", "llama3.1", input=jobs
    )
    assert result.exit_code == 0, result.stderr
    generate = {b["prompt"]: b for b in sent(fake_ollama, "/api/generate")}
    system = "Answer in a dry tone. {{not_a_var}} and $HOME stay."
    assert generate["a"]["system"] == system
    assert generate["a"]["model"] == "llama3.1"  # -m over the preset
    assert generate["a"]["options"] == {"temperature": 0.2, "seed": 7}
    assert generate["a"]["think"] is False and generate["a"]["keep_alive"] == "10m"
    assert "tools" not in generate["a"]  # tools are for chat
    own = generate["b"]
    assert (own["system"], own["think"], own["options"]) == (
        "Mine.",
        True,
        {"temperature": 0.2, "seed": 1},
    )
    chats = {b["messages"][0]["content"]: b for b in sent(fake_ollama, "/api/chat")}
    assert chats[system]["messages"] == [{"role": "system", "content": system}, user]
    assert chats[system]["tools"] == [{"type": "function", "function": {"name": "f"}}]
    assert len(chats["S"]["messages"]) == 2 and chats["S"]["tools"] == []


def test_the_command_line_wins_over_the_preset_over_ostream_model(
    fake_ollama: FakeOllama, presets: Path
) -> None:
    args = ("--dry-run", "-p", "terse", "--var", "tone=x")
    job = lines({"prompt": "a"})
    body = shown(batch(fake_ollama, presets, *args, input=job, OSTREAM_MODEL="env-model"))[0]
    assert body["body"]["model"] == "preset-model"  # the preset over OSTREAM_MODEL
    result = batch(
        fake_ollama,
        presets,
        *args,
        "-m",
        "cli",
        "-o",
        "seed=9",
        "-s",
        "S",
        "--think",
        "high",
        "--keep-alive",
        "1m",
        input=job,
    )
    body = shown(result)[0]["body"]
    assert (body["model"], body["system"], body["think"], body["keep_alive"]) == (
        "cli",
        "S",
        "high",
        "1m",
    )
    assert body["options"] == {"temperature": 0.2, "seed": 9}  # -o key by key


def test_openai_urls_take_from_the_preset_what_maps_to_openai_fields(
    fake_ollama: FakeOllama, presets: Path
) -> None:
    job = {"url": "/v1/chat/completions", "body": {"messages": [{"role": "user", "content": "x"}]}}
    result = batch(
        fake_ollama, presets, "--dry-run", "-p", "terse", "--var", "tone=x", input=lines(job)
    )
    system = {"role": "system", "content": "Answer in a x tone. {{not_a_var}} and $HOME stay."}
    # As the command line's defaults: model, the system prompt, temperature and seed;
    # think and keep_alive have no OpenAI field.
    assert shown(result)[0]["body"] == {
        "messages": [system, *job["body"]["messages"]],
        "model": "preset-model",
        "temperature": 0.2,
        "seed": 7,
    }


def test_text_lines_are_rendered_by_a_prompt_preset(fake_ollama: FakeOllama, presets: Path) -> None:
    (presets / "halves.md").write_text("[{{stdin}}|{{args}}|{{input}}] {{x}} $y {z}")
    result = batch(
        fake_ollama,
        presets,
        "--text",
        "-p",
        "halves",
        "-m",
        "llama3.1",
        input="one {{input}}\n\ntwo\r\n",
    )
    assert result.exit_code == 0, result.stderr
    prompts = sorted(b["prompt"] for b in sent(fake_ollama, "/api/generate"))
    assert prompts == [
        "[one {{input}}||one {{input}}] {{x}} $y {z}",  # the line, not rescanned
        "[two||two] {{x}} $y {z}",
    ]


def test_text_with_a_system_preset_keeps_each_line_as_the_prompt(
    fake_ollama: FakeOllama, presets: Path
) -> None:
    result = batch(
        fake_ollama,
        presets,
        "--text",
        "--dry-run",
        "-p",
        "terse",
        "--var",
        "tone=calm",
        input="a line\n",
    )
    body = shown(result)[0]["body"]
    assert body["prompt"] == "a line" and body["system"].startswith("Answer in a calm tone.")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-p", "terse"), "tone required"),
        (("-p", "terse", "--var", "tone=x", "--var", "colour=red"), "no var colour"),
        (("-p", "digest", "--var", "words=5", "--text"), "no var words"),
        (("--var", "tone=x"), "needs -p"),
        (("-p", "nowhere"), "no preset nowhere"),
        (("-p", "digest"), "give --text"),  # a prompt-kind preset and JSON jobs
    ],
)
def test_preset_mistakes_are_exit_2_before_anything_runs(
    fake_ollama: FakeOllama, presets: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    output = tmp_path / "out.jsonl"
    result = batch(
        fake_ollama, presets, *args, "--output", str(output), "-m", "llama3.1", input="line\n"
    )
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not fake_ollama.requests and not output.exists()


# --------------------------------------------------------------------------- --dry-run


def test_the_issues_done_when_line(fake_ollama: FakeOllama, presets: Path) -> None:
    """`ostream batch --text -p summarise --dry-run < lines.txt` shows the jobs."""
    lines_txt = "The first text.\nThe second, with {braces} and $dollars.\n"
    env = {"OSTREAM_MODEL": "llama3.1", "OLLAMA_API_KEY": "s3cret"}
    args = ("--text", "-p", "summarise", "--dry-run")
    result = batch(fake_ollama, presets, *args, input=lines_txt, **env)
    jobs = shown(result)
    assert [j["custom_id"] for j in jobs] == ["line-1", "line-2"]
    assert all(j["method"] == "POST" and j["url"] == "/api/generate" for j in jobs)
    assert jobs[1]["body"] == {
        "prompt": "The second, with {braces} and $dollars.",
        "model": "llama3.1",
        "system": SUMMARISE.split("---\n")[2].rstrip("\n"),
        "stream": True,
    }
    assert not fake_ollama.requests
    assert "s3cret" not in result.stdout + result.stderr
    assert "2 to send, 0 invalid; nothing sent" in result.stderr


def test_dry_run_shows_each_text_line_rendered(fake_ollama: FakeOllama, presets: Path) -> None:
    args = ("--text", "-p", "digest", "--var", "length=one line", "--dry-run", "-m", "m")
    [job] = shown(batch(fake_ollama, presets, *args, input="A {{length}} text.\n"))
    assert job["body"]["prompt"] == (
        "Summarise the following text in one line. Keep names and figures exact."
        "\n\nA {{length}} text."
    )
    assert "system" not in job["body"] and not fake_ollama.requests


def test_dry_run_lines_are_request_lines_a_run_takes_back(
    fake_ollama: FakeOllama, presets: Path
) -> None:
    jobs = lines(
        {"custom_id": "a", "prompt": "x"}, {"messages": [{"role": "user", "content": "y"}]}
    )
    dry = batch(fake_ollama, presets, "--dry-run", "-m", "llama3.1", "-o", "seed=1", input=jobs)
    assert [(j["custom_id"], j["url"]) for j in shown(dry)] == [
        ("a", "/api/generate"),
        ("line-2", "/api/chat"),
    ]
    assert not fake_ollama.requests
    again = batch(fake_ollama, presets, input=dry.stdout)
    assert again.exit_code == 0, again.stderr
    assert [r.json["options"] for r in fake_ollama.requests if r.method == "POST"] == [
        {"seed": 1},
        {"seed": 1},
    ]


def test_dry_run_shows_invalid_lines_as_their_result_and_exits_0(
    fake_ollama: FakeOllama, presets: Path
) -> None:
    result = batch(fake_ollama, presets, "--dry-run", input='not json\n{"prompt": "no model"}\n')
    out = shown(result)  # exit 0, as a dry run always does
    assert [(r["custom_id"], r["error"]["code"], r["response"]) for r in out] == [
        ("line-1", "invalid_request", None),
        ("line-2", "invalid_request", None),
    ]
    assert "no model" in out[1]["error"]["message"]
    assert "0 to send, 2 invalid" in result.stderr
    assert not fake_ollama.requests


def test_dry_run_never_writes_output_and_leaves_out_what_it_holds(
    fake_ollama: FakeOllama, presets: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.jsonl"
    missing = batch(
        fake_ollama,
        presets,
        "--dry-run",
        "--output",
        str(output),
        "-m",
        "llama3.1",
        input=lines({"custom_id": "a", "prompt": "x"}),
    )
    assert len(shown(missing)) == 1 and not output.exists()
    done = {
        "id": "batch_req_1",
        "custom_id": "a",
        "response": {"status_code": 200, "body": {}},
        "error": None,
    }
    held = json.dumps(done) + "\n" + '{"custom_id": "b", "err'  # and a torn last line
    output.write_text(held)
    jobs = lines({"custom_id": "a", "prompt": "x"}, {"custom_id": "b", "prompt": "y"})
    result = batch(
        fake_ollama, presets, "--dry-run", "--output", str(output), "-m", "llama3.1", input=jobs
    )
    assert [j["custom_id"] for j in shown(result)] == ["b"]
    assert "1 done already" in result.stderr
    assert output.read_text() == held  # not even the torn line repaired
    assert not fake_ollama.requests


def test_dry_run_applies_the_shard_and_needs_no_reachable_host(presets: Path) -> None:
    jobs = lines(*({"custom_id": f"j{i}", "prompt": "x"} for i in range(20)))
    env = {"OSTREAM_HOSTS": "http://127.0.0.1:9", "OSTREAM_PRESETS": str(presets)}
    halves = [
        shown(
            invoke(
                None,
                "batch",
                "--dry-run",
                "-q",
                "--shard",
                f"{i}/2",
                "-m",
                "m",
                input=jobs,
                env=env,
            )
        )
        for i in (0, 1)
    ]
    ids = [j["custom_id"] for half in halves for j in half]
    assert sorted(ids) == sorted(f"j{i}" for i in range(20)) and all(halves)


def test_dry_run_streams_as_input_arrives(fake_ollama: FakeOllama) -> None:
    """The first job is shown while INPUT is still open: read as needed, never whole."""
    proc = spawn(
        ["batch", "--dry-run", "--text", "-m", "m"],
        fake_ollama.url,
        stdin=subprocess.PIPE,
        env=env_for(fake_ollama.url),
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(b"first\n")
        proc.stdin.flush()
        first = read_until(proc.stdout, lambda data: data.endswith(b"\n"), timeout=60)
        assert json.loads(first)["body"]["prompt"] == "first"
        proc.stdin.write(b"second\n")
        proc.stdin.close()
        rest = read_until(proc.stdout, lambda data: data.endswith(b"\n"), timeout=60)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == 0
    assert json.loads(rest)["body"]["prompt"] == "second"
    assert not fake_ollama.requests


def test_batch_offers_preset_names(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "summarise.md").write_text(SUMMARISE)
    (folder / "sql.md").write_text("X")
    env = {"OSTREAM_PRESETS": str(folder), "XDG_CONFIG_HOME": str(tmp_path / "none")}
    assert offered("ostream batch -p su", **env) == ["summarise"]
    assert offered("ostream batch --text --preset ", **env) == ["sql", "summarise"]

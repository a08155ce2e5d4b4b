"""Presets (-p NAME|PATH, --var): front matter, the two kinds of body, one-pass
rendering, precedence, lookup, `ostream presets`, and how they meet chat --history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ostream.errors import UsageError
from ostream.presets import available, find_preset, parse_preset, render
from ostream.testing import FakeOllama
from tests.inproc import invoke, sent


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose config folder is tmp_path/config (and no OSTREAM_PRESETS)."""
    return {
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "OSTREAM_PRESETS": "",
    }


def presets_dir(home: dict[str, str]) -> Path:
    return Path(home["XDG_CONFIG_HOME"]) / "ostream" / "presets"


def dry(server: FakeOllama, *args: str, input: str | None = None, env: Any = None) -> Any:
    """The body a --dry-run shows; nothing may reach the server."""
    result = invoke(server, *args, "--dry-run", input=input, env=env)
    assert result.exit_code == 0, result.stderr
    assert not server.requests
    return json.loads(result.stdout)["body"]


# --------------------------------------------------------------------------- the file


def test_front_matter_values_are_json_when_they_parse() -> None:
    preset = parse_preset(
        '---\nmodel: llama3.1\noptions: {"temperature": 0.2}\nthink: high\n'
        "keep-alive: 0\ndescription: Sums up\n# a comment\n\nformat: json\n---\nBe brief.\n",
        "p",
        Path("p.md"),
    )
    assert preset.settings == {
        "model": "llama3.1",
        "options": {"temperature": 0.2},
        "think": "high",
        "keep-alive": 0,
        "format": "json",
    }
    assert (preset.description, preset.body, preset.kind) == ("Sums up", "Be brief.", "system")


def test_no_front_matter_is_all_body() -> None:
    assert parse_preset("Be brief.\n", "p", Path("p")).body == "Be brief."


def test_an_unclosed_front_matter_is_exit_2_naming_the_file(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    path = write(tmp_path / "open.md", "---\nmodel: llama3.1\nBe brief.\n")
    result = invoke(fake_ollama, "generate", "-p", str(path), "hi")
    assert result.exit_code == 2
    assert f"preset {path}: " in result.stderr and "no closing `---`" in result.stderr
    assert not fake_ollama.requests


def test_a_crlf_file_reads_as_lf() -> None:
    front = parse_preset('---\r\nsystem: "Be brief."\r\n---\r\n', "p", Path("p.md"))
    assert front.settings == {"system": "Be brief."}
    body = parse_preset("---\r\nmodel: m\r\n---\r\nBe brief.\r\nNo lists.\r\n", "p", Path("p"))
    assert body.body == "Be brief.\nNo lists."
    assert body.system_prompt({}) == "Be brief.\nNo lists."


@pytest.mark.parametrize(
    ("front", "message"),
    [
        ("think: yes", "p.md:3: think takes true, false, low, medium, high, max; not 'yes'"),
        ("keep-alive: soon", "p.md:3: keep-alive takes a duration"),
        ('vars: {"input": "x"}', "p.md:3: vars: the name 'input' is reserved"),
        ('vars: {"stdin": null}', "p.md:3: vars: the name 'stdin' is reserved"),
        ('vars: {"a b": null}', 'p.md:3: vars: "a b" is not a var name'),
        ('vars: {"lang": 3}', "p.md:3: vars: lang takes a text default or null"),
    ],
)
def test_a_bad_value_names_the_file_the_line_and_the_key(
    fake_ollama: FakeOllama, tmp_path: Path, front: str, message: str
) -> None:
    path = write(tmp_path / "p.md", f"---\nmodel: llama3.1\n{front}\n---\nBody {{{{input}}}}\n")
    result = invoke(fake_ollama, "generate", "-p", str(path), "hi")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"ostream: error: preset {tmp_path}/{message}")
    assert "--" not in result.stderr and "{'" not in result.stderr  # the key, JSON, no repr


@pytest.mark.parametrize(
    ("front", "message"),
    [
        ("colour: red", "unknown key 'colour'"),
        ("just words", "not `key: value`"),
        ("options: [1]", "options takes a JSON object"),
        ("think: very", "think takes"),
        ("keep-alive: soon", "keep-alive takes"),
        ('vars: {"input": null}', "reserved"),
        ("vars: lang", "vars takes"),
        ("format: yaml", "format takes json"),
        ("system: Two\n", "both the body and `system:`"),
    ],
)
def test_a_bad_front_matter_is_a_usage_error(front: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        parse_preset(f"---\n{front}\n---\nBody.\n", "p", Path("p.md"))
    assert info.value.code == 2


def test_an_unknown_key_is_exit_2(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    path = write(tmp_path / "p.md", "---\nmodle: x\n---\nHi\n")
    result = invoke(fake_ollama, "generate", "-m", "m", "-p", str(path), "x")
    assert result.exit_code == 2
    assert "p.md:2: unknown key 'modle'" in result.stderr
    assert not fake_ollama.requests


# --------------------------------------------------------------------------- rendering


def test_one_pass_inserted_text_is_not_rescanned() -> None:
    assert render("{{a}} {{b}}", {"a": "{{b}}", "b": "B"}) == "{{b}} B"


@pytest.mark.parametrize(
    "text",
    [
        "{{ input }}",
        "{{other}}",
        "${input} $input $HOME",
        "{% raw %}{{x}}{% endraw %}",
        "{input} {{{lang}",
        "{{.Name}} {{range .}}",
        "\\{{input\\}}",
    ],
)
def test_other_braces_and_dollars_stay_literal(text: str) -> None:
    preset = parse_preset(text, "p", Path("p.md"))
    assert preset.kind == "system"
    assert preset.system_prompt({}) == text


def test_a_prompt_body_places_stdin_and_words(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    path = write(tmp_path / "p.md", "S:{{stdin}}|A:{{args}}|I:{{input}}|$x {{y}}\n")
    body = dry(fake_ollama, "generate", "-m", "m", "-p", str(path), "two words", input="in\n")
    assert body["prompt"] == "S:in|A:two words|I:in\n\ntwo words|$x {{y}}"
    assert "system" not in body


def test_inserted_input_is_not_rendered(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    path = write(tmp_path / "p.md", '---\nvars: {"lang": "French"}\n---\n{{lang}}: {{input}}')
    body = dry(fake_ollama, "generate", "-m", "m", "-p", str(path), input="{{lang}} {{args}}")
    assert body["prompt"] == "French: {{lang}} {{args}}"


def test_a_prompt_body_without_any_input_is_exit_2(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    path = write(tmp_path / "p.md", "Summarise: {{input}}")
    result = invoke(fake_ollama, "generate", "-m", "m", "-p", str(path))
    assert result.exit_code == 2
    assert "no input" in result.stderr


def test_a_system_body_is_the_system_prompt(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    path = write(tmp_path / "p.md", '---\nvars: {"lang": null}\n---\nTranslate to {{lang}}.\n')
    args = ["-m", "m", "-p", str(path), "--var", "lang=German"]
    body = dry(fake_ollama, "generate", *args, "Good", "day", input="Hello\n")
    assert body["system"] == "Translate to German."
    assert body["prompt"] == "Hello\n\nGood day"  # the prompt built as always
    body = dry(fake_ollama, "chat", *args, "Hi")
    assert body["messages"] == [
        {"role": "system", "content": "Translate to German."},
        {"role": "user", "content": "Hi"},
    ]


def test_var_from_a_file_and_defaults(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.md",
        '---\nvars: {"style": "terse", "notes": null}\n---\n{{style}} {{notes}} {{input}}',
    )
    write(tmp_path / "notes.txt", "from {{a}} file\n\n")
    var = f"notes=@{tmp_path / 'notes.txt'}"
    body = dry(fake_ollama, "generate", "-m", "m", "-p", str(path), "--var", var, "go")
    assert body["prompt"] == "terse from {{a}} file go"


@pytest.mark.parametrize(
    ("vars_", "message"),
    [
        ([], "a, b required: give --var a=VALUE --var b=VALUE"),
        (["--var", "a=1", "--var", "b=2", "--var", "c=3", "--var", "d=4"], "no var c, d"),
        (["--var", "a"], "--var takes NAME=VALUE"),
    ],
)
def test_vars_missing_or_unknown_are_exit_2_naming_them(
    fake_ollama: FakeOllama, tmp_path: Path, vars_: list[str], message: str
) -> None:
    path = write(tmp_path / "p.md", '---\nvars: {"a": null, "b": null}\n---\n{{a}}{{b}}{{input}}')
    result = invoke(fake_ollama, "generate", "-m", "m", "-p", str(path), *vars_, "x")
    assert result.exit_code == 2
    assert message in result.stderr
    assert not fake_ollama.requests


def test_var_without_a_preset_is_exit_2(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", "--var", "a=1", "x")
    assert result.exit_code == 2
    assert "needs -p" in result.stderr


# --------------------------------------------------------------------------- precedence


def test_the_command_line_wins_over_the_preset_and_the_preset_over_the_environment(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "p.md",
        '---\nmodel: from-preset\nsystem: Preset system\noptions: {"temperature": 0.1,'
        ' "seed": 7}\nthink: low\nkeep-alive: 5m\nformat: json\n---\n{{input}}',
    )
    env = {"OSTREAM_MODEL": "from-env"}
    body = dry(fake_ollama, "generate", "-p", str(path), "x", env=env)
    assert body == {
        "model": "from-preset",
        "stream": True,
        "options": {"temperature": 0.1, "seed": 7},
        "format": "json",
        "think": "low",
        "keep_alive": "5m",
        "prompt": "x",
        "system": "Preset system",
    }
    args = ["-m", "cli", "-s", "CLI system", "-o", "seed=1", "--think", "false"]
    args += ["--keep-alive", "0", "--format", '{"type": "object"}']
    body = dry(fake_ollama, "generate", "-p", str(path), *args, "x", env=env)
    assert body == {
        "model": "cli",
        "stream": True,
        "options": {"temperature": 0.1, "seed": 1},  # -o key by key
        "format": {"type": "object"},
        "think": False,
        "keep_alive": 0,
        "prompt": "x",
        "system": "CLI system",
    }


def test_preset_tools_go_to_chat(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    path = write(tmp_path / "p.md", f"---\ntools: {json.dumps(tools)}\n---\nUse tools.")
    assert dry(fake_ollama, "chat", "-m", "m", "-p", str(path), "x")["tools"] == tools
    assert "tools" not in dry(fake_ollama, "generate", "-m", "m", "-p", str(path), "x")


# --------------------------------------------------------------------------- lookup


def test_lookup_order(fake_ollama: FakeOllama, tmp_path: Path, home: dict[str, str]) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write(second / "p.md", "second")
    write(presets_dir(home) / "p.md", "config")
    write(presets_dir(home) / "q.md", "config q")
    env = {**home, "OSTREAM_PRESETS": f"{first}::{second}"}
    assert dry(fake_ollama, "generate", "-m", "m", "-p", "p", "x", env=env)["system"] == "second"
    write(first / "p" / "system.md", "first, fabric style")
    body = dry(fake_ollama, "generate", "-m", "m", "-p", "p", "x", env=env)
    assert body["system"] == "first, fabric style"
    write(first / "p.md", "first, NAME.md")  # NAME.md before NAME/system.md
    assert dry(fake_ollama, "generate", "-m", "m", "-p", "p", "x", env=env)["system"] == (
        "first, NAME.md"
    )
    assert dry(fake_ollama, "generate", "-m", "m", "-p", "q", "x", env=env)["system"] == (
        "config q"
    )


def test_the_config_folder_defaults_to_home(tmp_path: Path) -> None:
    write(tmp_path / ".config" / "ostream" / "presets" / "p.md", "x")
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": "relative/ignored"}
    assert find_preset("p", env) == tmp_path / ".config" / "ostream" / "presets" / "p.md"


def test_a_name_with_a_slash_or_md_is_a_path(
    fake_ollama: FakeOllama, tmp_path: Path, home: dict[str, str], monkeypatch: Any
) -> None:
    write(presets_dir(home) / "p.md", "from the folder")
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "p.md", "from the path")
    write(tmp_path / "fab" / "system.md", "fabric folder by path")
    for name, system in [("p.md", "from the path"), ("./fab", "fabric folder by path")]:
        body = dry(fake_ollama, "generate", "-m", "m", "-p", name, "x", env=home)
        assert body["system"] == system
    result = invoke(fake_ollama, "generate", "-m", "m", "-p", "./nope.md", "x", env=home)
    assert result.exit_code == 2
    assert "-p ./nope.md: no such preset file" in result.stderr


def test_a_missing_name_says_where_it_looked(fake_ollama: FakeOllama, home: dict[str, str]) -> None:
    result = invoke(fake_ollama, "chat", "-m", "m", "-p", "nope", "x", env=home)
    assert result.exit_code == 2
    assert "no preset nope.md or nope/system.md in" in result.stderr
    assert str(presets_dir(home)) in result.stderr


FABRIC = """# IDENTITY and PURPOSE

You extract surprising ideas. Take a deep breath: {{not a var}}, ${HOME}.

# OUTPUT INSTRUCTIONS

- Only output Markdown.

# INPUT

INPUT:
"""


def test_a_fabric_patterns_folder_runs_unchanged(
    fake_ollama: FakeOllama, tmp_path: Path, home: dict[str, str]
) -> None:
    """The pattern is the system message and the input the user message."""
    patterns = tmp_path / "patterns"
    write(patterns / "extract_wisdom" / "system.md", FABRIC)
    write(patterns / "extract_wisdom" / "README.md", "not a preset")
    env = {**home, "OSTREAM_PRESETS": str(patterns)}
    result = invoke(
        fake_ollama, "chat", "-m", "m", "-p", "extract_wisdom", input="The talk.\n", env=env
    )
    assert result.exit_code == 0, result.stderr
    assert sent(fake_ollama)["messages"] == [
        {"role": "system", "content": FABRIC.rstrip("\n")},
        {"role": "user", "content": "The talk.\n"},
    ]
    assert result.stdout == "echo: The talk.\n"


# --------------------------------------------------------------------------- ostream presets


def test_presets_lists_names_and_descriptions(
    fake_ollama: FakeOllama, tmp_path: Path, home: dict[str, str]
) -> None:
    write(presets_dir(home) / "commit.md", "---\ndescription: A commit message\n---\n{{stdin}}")
    write(presets_dir(home) / "broken.md", "---\nbad key: 1\n---\n")
    write(tmp_path / "fab" / "summarize" / "system.md", "Summarise.")
    write(tmp_path / "fab" / "commit.md", "shadows the config one")
    env = {**home, "OSTREAM_PRESETS": str(tmp_path / "fab")}
    result = invoke(fake_ollama, "presets", env=env)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["broken", "commit", "summarize"]
    assert "unknown key 'bad key'" in lines[0]
    result = invoke(fake_ollama, "presets", "--jsonl", env=env)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[1] == {
        "name": "commit",
        "path": str(tmp_path / "fab" / "commit.md"),
        "kind": "system",
        "description": "",
        "vars": {},
    }
    assert rows[2]["path"] == str(tmp_path / "fab" / "summarize" / "system.md")
    assert "error" in rows[0]


def test_presets_show_prints_the_file(fake_ollama: FakeOllama, home: dict[str, str]) -> None:
    text = "---\ndescription: d\n---\nBody {{input}}\n"
    write(presets_dir(home) / "p.md", text)
    result = invoke(fake_ollama, "presets", "show", "p", env=home)
    assert (result.exit_code, result.stdout) == (0, text)
    for args in (["show"], ["list"], ["show", "p", "q"]):
        assert invoke(fake_ollama, "presets", *args, env=home).exit_code == 2
    result = invoke(fake_ollama, "presets", "show", "nope", env=home)
    assert result.exit_code == 2
    assert "presets show nope: no preset" in result.stderr


def test_available_skips_hidden_entries(tmp_path: Path) -> None:
    write(tmp_path / ".hidden.md", "x")
    write(tmp_path / "a.md", "x")
    write(tmp_path / "notes" / "README.md", "no system.md: not a preset")
    env = {"OSTREAM_PRESETS": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "none")}
    assert [name for name, _ in available(env)] == ["a"]


# --------------------------------------------------------------------------- interplay


def test_with_history_the_system_prompt_is_sent_not_stored(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    path = write(tmp_path / "p.md", "You are terse.")
    history = tmp_path / "talk.jsonl"
    for words in ("one", "two"):
        args = ["chat", "-m", "m", "-p", str(path), "--history", str(history), words]
        assert invoke(fake_ollama, *args).exit_code == 0
    assert sent(fake_ollama)["messages"][0] == {"role": "system", "content": "You are terse."}
    stored = [json.loads(line) for line in history.read_text().splitlines()]
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]
    assert len(sent(fake_ollama)["messages"]) == 4  # system, one turn, the new message


def test_with_history_a_prompt_preset_stores_its_rendered_message(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    path = write(tmp_path / "p.md", "Summarise:\n{{input}}")
    history = tmp_path / "talk.jsonl"
    args = ["chat", "-m", "m", "-p", str(path), "--history", str(history), "the text"]
    assert invoke(fake_ollama, *args).exit_code == 0
    first = json.loads(history.read_text().splitlines()[0])
    assert first == {"role": "user", "content": "Summarise:\nthe text"}


def test_raw_has_no_preset(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    result = invoke(fake_ollama, "raw", "-p", "x", "/api/generate")
    assert result.exit_code == 2
    assert "-p" in result.stderr
    assert not fake_ollama.requests


def test_the_library_api_fills_what_a_job_leaves_out() -> None:
    """What batch and chat -i build on: the body (a job) wins, options key by key."""
    preset = parse_preset(
        '---\nmodel: p\noptions: {"seed": 1, "top_k": 5}\nkeep-alive: 5m\nthink: "high"\n'
        'vars: {"lang": "French"}\n---\nInto {{lang}}: {{input}}',
        "p",
        Path("p.md"),
    )
    job: dict[str, Any] = {"model": "job", "options": {"seed": 2}, "prompt": "x"}
    preset.apply_defaults(job, tools=False)
    assert job == {
        "model": "job",
        "options": {"seed": 2, "top_k": 5},
        "prompt": "x",
        "keep_alive": "5m",
        "think": "high",
    }
    assert preset.render(None, ["a", "line"], preset.values({})) == "Into French: a line"
    assert preset.turn("piped\n", [], {"lang": "Dutch"}) == (None, "Into Dutch: piped\n")

"""chat -i driven in-process through prompt_toolkit's pipe input: turns, slash commands,
paste, and the conversation file shared with one-shot `chat --history`."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from ostream.cli import main
from ostream.environment import Environment
from ostream.testing import FakeOllama, Reply, Send
from ostream.testing.events import Drop
from ostream.testing.replies import chat_lines
from tests.inproc import invoke

ENTER, CTRL_D, ALT_ENTER = "\r", "\x04", "\x1b\r"


def paste(text: str) -> str:
    """`text` as a terminal sends a bracketed paste."""
    return f"\x1b[200~{text}\x1b[201~"


@dataclass
class Session:
    code: int
    out: str
    err: str
    requests: list[list[dict[str, object]]]


def chat_i(
    server: FakeOllama, keys: str, *args: str, input_history: bool = False, **environ: str
) -> Session:
    """`ostream chat -i ARGS` with `keys` typed (then Ctrl-D), on a pretend terminal;
    the input line history is off unless `input_history`."""
    out, err = io.BytesIO(), io.BytesIO()
    if not input_history:
        environ = {"OSTREAM_NOHISTORY": "1", **environ}
    env = Environment(
        stdout=out,
        stderr=err,
        stdout_tty=True,
        stderr_tty=True,
        stdin_tty=True,
        environ={"OLLAMA_HOST": server.url, **environ},
    )
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        pipe.send_text(keys + CTRL_D)
        code = main(["chat", "-i", *args], env=env)
    return Session(
        code,
        out.getvalue().decode(),
        err.getvalue().decode(),
        [r.json["messages"] for r in server.requests if r.path == "/api/chat"],
    )


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def test_each_turn_streams_and_joins_the_conversation(fake_ollama: FakeOllama) -> None:
    s = chat_i(fake_ollama, "hello" + ENTER + "again" + ENTER, "-m", "m", "-s", "Be brief.")
    assert (s.code, s.out) == (0, "echo: hello\necho: again\n")
    assert s.requests[1] == [
        {"role": "system", "content": "Be brief."},
        user("hello"),
        assistant("echo: hello"),
        user("again"),
    ]


def test_message_words_are_the_first_turn(fake_ollama: FakeOllama) -> None:
    s = chat_i(fake_ollama, "", "-m", "m", "first", "words")
    assert (s.code, s.out, s.requests) == (0, "echo: first words\n", [[user("first words")]])


def test_a_paste_of_several_lines_is_one_message(fake_ollama: FakeOllama) -> None:
    s = chat_i(fake_ollama, paste("line one\r\nline two\nline three") + ENTER, "-m", "m")
    assert s.requests == [[user("line one\nline two\nline three")]]


def test_alt_enter_starts_a_new_line(fake_ollama: FakeOllama) -> None:
    s = chat_i(fake_ollama, "one" + ALT_ENTER + "two" + ENTER, "-m", "m")
    assert s.requests == [[user("one\ntwo")]]


def test_a_server_error_is_one_line_and_the_session_goes_on(fake_ollama: FakeOllama) -> None:
    keys = "hi" + ENTER + "/model m" + ENTER + "hi" + ENTER
    s = chat_i(fake_ollama, keys, "-m", "missing")
    assert s.code == 0
    assert "ostream: error: model 'missing' not found; try: ollama pull missing" in s.err
    assert "/model NAME" in s.err
    assert s.out == "echo: hi\n"
    assert s.requests[-1] == [user("hi")]  # the failed turn is not part of the conversation


def test_a_broken_stream_is_one_line_then_continue_goes_on(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(
        Reply(events=[*[Send(x) for x in chat_lines(["Hel", "lo"], model="m")[:-1]], Drop()]),
        path="/api/chat",
    )
    fake_ollama.script(
        Reply(events=[Send(x) for x in chat_lines([" you"], model="m")]), "/api/chat"
    )
    s = chat_i(fake_ollama, "hi" + ENTER + "/continue" + ENTER + "next" + ENTER, "-m", "m")
    assert s.code == 0
    assert s.err.count("ostream: error:") == 1
    assert s.out == "Hello\n you\necho: next\n"
    assert s.requests[1] == [user("hi"), assistant("Hello")]
    assert s.requests[2] == [user("hi"), assistant("Hello you"), user("next")]


def test_continue_goes_on_with_a_completed_reply(fake_ollama: FakeOllama) -> None:
    s = chat_i(fake_ollama, "a b" + ENTER + "/continue" + ENTER + "c" + ENTER, "-m", "m")
    # The fake continues "echo: a b" with nothing more; the request is what counts.
    body = fake_ollama.requests[1].json
    assert body["messages"] == [user("a b"), assistant("echo: a b")]
    assert body["think"] is False
    assert s.requests[2] == [user("a b"), assistant("echo: a b"), user("c")]


def test_retry_replaces_the_last_reply(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    history = tmp_path / "talk.jsonl"
    fake_ollama.script(
        Reply(events=[Send(x) for x in chat_lines(["first"], model="m")]), "/api/chat"
    )
    s = chat_i(fake_ollama, "q" + ENTER + "/retry" + ENTER, "-m", "m", "--history", str(history))
    assert s.out == "first\necho: q\n"
    assert s.requests[1] == [user("q")]
    assert _lines(history) == [user("q"), assistant("echo: q")]


def test_retry_with_nothing_to_retry(fake_ollama: FakeOllama) -> None:
    s = chat_i(fake_ollama, "/retry" + ENTER + "/continue" + ENTER, "-m", "m")
    assert "nothing to retry" in s.err and "no reply to continue" in s.err
    assert not s.requests


def test_model_system_set_think_change_the_next_request(fake_ollama: FakeOllama) -> None:
    keys = "".join(
        k + ENTER
        for k in ("/model other", "/system Be terse.", "/set temperature=0.5", "/think low", "q")
    )
    s = chat_i(fake_ollama, keys, "-m", "m", "-o", "seed=1")
    body = fake_ollama.requests[-1].json
    assert body["model"] == "other"
    assert body["messages"][0] == {"role": "system", "content": "Be terse."}
    assert body["options"] == {"seed": 1, "temperature": 0.5}
    assert body["think"] == "low"
    assert 'options {"seed":1,"temperature":0.5}' in s.err


def test_system_alone_removes_it_and_bad_values_are_one_line(fake_ollama: FakeOllama) -> None:
    keys = "/system" + ENTER + "/think lots" + ENTER + "/set nonsense" + ENTER + "q" + ENTER
    s = chat_i(fake_ollama, keys, "-m", "m", "-s", "S")
    assert s.requests == [[user("q")]]
    assert "ostream: error: /think takes true, false" in s.err
    assert "ostream: error: /set takes KEY=VALUE" in s.err


def test_clear_starts_an_empty_conversation(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    history = tmp_path / "talk.jsonl"
    keys = "a" + ENTER + "/clear" + ENTER + "b" + ENTER
    s = chat_i(fake_ollama, keys, "-m", "m", "--history", str(history))
    assert s.requests[-1] == [user("b")]
    assert "no longer written" in s.err
    assert _lines(history) == [user("a"), assistant("echo: a")]


def test_save_then_one_shot_chat_history_continues_it(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    saved = tmp_path / "saved.jsonl"
    keys = "a" + ENTER + f"/save {saved}" + ENTER + "b" + ENTER
    s = chat_i(fake_ollama, keys, "-m", "m")
    assert "2 messages saved" in s.err
    assert _lines(saved) == [user("a"), assistant("echo: a"), user("b"), assistant("echo: b")]
    result = invoke(fake_ollama, "chat", "-m", "m", "--history", str(saved), "c")
    assert result.exit_code == 0
    assert fake_ollama.requests[-1].json["messages"][-3:] == [
        user("b"),
        assistant("echo: b"),
        user("c"),
    ]


def test_load_continues_a_one_shot_conversation(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    talk = tmp_path / "talk.jsonl"
    assert invoke(fake_ollama, "chat", "-m", "m", "--history", str(talk), "x").exit_code == 0
    s = chat_i(fake_ollama, f"/load {talk}" + ENTER + "y" + ENTER, "-m", "m")
    assert s.requests[-1] == [user("x"), assistant("echo: x"), user("y")]
    assert _lines(talk)[-2:] == [user("y"), assistant("echo: y")]


def test_load_and_save_refuse_what_history_refuses(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not a conversation\n")
    keys = f"/load {tmp_path / 'none.jsonl'}" + ENTER + f"/save {junk}" + ENTER + "/save" + ENTER
    s = chat_i(fake_ollama, keys, "-m", "m")
    assert s.code == 0
    assert s.err.count("ostream: error:") == 3
    assert junk.read_text() == "not a conversation\n"


def test_edit_puts_the_editor_text_in_the_input_line(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    editor = tmp_path / "editor"
    editor.write_text(
        f"#!{sys.executable}\nimport sys\nopen(sys.argv[1], 'w').write('from\\nthe editor\\n')\n"
    )
    editor.chmod(0o755)
    s = chat_i(fake_ollama, "/edit" + ENTER + ENTER, "-m", "m", EDITOR=str(editor))
    assert s.requests == [[user("from\nthe editor")]]


def test_unknown_commands_and_double_slash(fake_ollama: FakeOllama) -> None:
    s = chat_i(fake_ollama, "/nope" + ENTER + "//etc is a path" + ENTER, "-m", "m")
    assert "unknown command /nope" in s.err
    assert s.requests == [[user("/etc is a path")]]


def test_help_lists_every_command(fake_ollama: FakeOllama) -> None:
    from ostream.slash import NAMES

    s = chat_i(fake_ollama, "/help" + ENTER, "-m", "m")
    assert all(name in s.err for name in NAMES)


def test_bye_ends_with_exit_0_and_sends_nothing_after(fake_ollama: FakeOllama) -> None:
    s = chat_i(fake_ollama, "/bye" + ENTER + "after" + ENTER, "-m", "m")
    assert (s.code, s.requests) == (0, [])


def test_thinking_goes_to_stderr_and_control_characters_are_shown(fake_ollama: FakeOllama) -> None:
    s = chat_i(fake_ollama, "q" + ENTER + "/model control" + ENTER + "q" + ENTER, "-m", "think")
    assert "Let me think." in s.err and "Let me think." not in s.out
    assert "\x1b" not in s.out and "^[" in s.out


def test_jsonl_and_no_terminal_are_usage_errors(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "chat", "-i", "-m", "m")  # CliRunner: no terminal
    assert result.exit_code == 2
    assert "-i needs a terminal" in result.stderr
    s = chat_i(fake_ollama, "", "-m", "m", "--jsonl")
    assert s.code == 2 and "--jsonl" in s.err


def test_completion_of_commands_and_model_names(fake_ollama: FakeOllama) -> None:
    from ostream.connection import Host
    from ostream.lineinput import SlashCompleter
    from ostream.run import Target

    completer = SlashCompleter(Target(Host(fake_ollama.url)))

    def offered(text: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(text), None)]  # type: ignore[arg-type]

    assert offered("/c") == ["/clear", "/continue"]
    assert offered("/model ll") == ["llama3.1:latest"]
    assert offered("/think h") == ["high"]
    assert offered("hello") == []


def test_input_history_lives_under_xdg_state_home(tmp_path: Path) -> None:
    from ostream.lineinput import history_file

    assert history_file({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "ostream/input_history"
    assert history_file({"XDG_STATE_HOME": "relative", "HOME": "/h"}) is not None
    assert history_file({"OSTREAM_NOHISTORY": "1"}) is None


def test_input_lines_are_kept_in_the_history_file(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    state = tmp_path / "state"
    chat_i(
        fake_ollama, "remember me" + ENTER, "-m", "m", input_history=True, XDG_STATE_HOME=str(state)
    )
    kept = state / "ostream" / "input_history"
    assert "remember me" in kept.read_text()
    assert kept.stat().st_mode & 0o077 == 0  # private: what was said is nobody else's
    # Up arrow recalls it in the next session.
    s = chat_i(
        fake_ollama, "\x1b[A" + ENTER, "-m", "m", input_history=True, XDG_STATE_HOME=str(state)
    )
    assert s.requests[-1] == [user("remember me")]


def _lines(path: Path) -> list[object]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(autouse=True)
def _no_user_history(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))


def test_resume_in_a_session_continues_a_broken_stream(fake_ollama: FakeOllama) -> None:
    s = chat_i(fake_ollama, "a b c d" + ENTER + "next" + ENTER, "-m", "cut", "--resume")
    assert s.out == "echo: a b c d\necho: next\n"
    assert "resuming (1/2)" in s.err
    assert s.requests[2] == [user("a b c d"), assistant("echo: a b c d"), user("next")]


def test_save_keeps_a_file_of_another_conversation_and_save_bang_replaces_it(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text('{"role":"user","content":"keep me"}\n')
    s = chat_i(fake_ollama, f"/save {other}" + ENTER, "-m", "m")  # a fresh session: 0 messages
    assert f"ostream: error: /save: {other} exists; /save! {other} to replace it\n" in s.err
    assert _lines(other) == [user("keep me")]
    s = chat_i(fake_ollama, "a" + ENTER + f"/save! {other}" + ENTER, "-m", "m")
    assert "2 messages saved" in s.err
    assert _lines(other) == [user("a"), assistant("echo: a")]


def test_save_over_its_own_file_or_an_empty_one_needs_no_bang(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    talk, empty = tmp_path / "talk.jsonl", tmp_path / "empty.jsonl"
    talk.write_text('{"role":"user","content":"x"}\n{"role":"assistant","content":"y"}\n')
    empty.write_text("")
    keys = (
        f"/load {talk}" + ENTER + "a" + ENTER + f"/save {talk}" + ENTER + f"/save {empty}" + ENTER
    )
    s = chat_i(fake_ollama, keys, "-m", "m")
    assert "ostream: error:" not in s.err
    assert _lines(empty) == [user("x"), assistant("y"), user("a"), assistant("echo: a")]


def test_save_and_load_errors_name_the_command(fake_ollama: FakeOllama) -> None:
    keys = "/save /nonexistent/x.jsonl" + ENTER + "/load /nonexistent/x.jsonl" + ENTER
    s = chat_i(fake_ollama, keys, "-m", "m")
    assert "ostream: error: /save: no directory /nonexistent\n" in s.err
    assert "ostream: error: /load: no file /nonexistent/x.jsonl\n" in s.err
    assert "--history" not in s.err


def test_help_fits_80_columns_without_cutting_a_word(fake_ollama: FakeOllama) -> None:
    from ostream.slash import HELP

    s = chat_i(fake_ollama, "/help" + ENTER, "-m", "m")
    lines = s.err.splitlines()
    assert lines and all(len(line) <= 80 for line in lines)
    words = {word for what in HELP.values() for word in what.split()}
    assert words <= set(s.err.split())  # every word whole, on one line

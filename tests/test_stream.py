"""The stream engine and the writers: what reaches stdout and stderr (in-process, and a
few cases end to end through a real process)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from ostream.errors import ProtocolError, ServerError
from ostream.output import Streams, Writer, format_stats, visible
from ostream.raw import copy_response
from ostream.stream import Streamer
from ostream.testing import FakeOllama, Reply, Send, gen_chunks
from tests import proc
from tests.inproc import err, make_writer, out


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def gen(*tokens: str, done_text: str = "", thinking: tuple[str, ...] = ()) -> list[bytes]:
    lines = [line({"response": "", "thinking": t, "done": False}) for t in thinking]
    lines += [line({"model": "m", "response": t, "done": False}) for t in tokens]
    lines.append(line({"model": "m", "response": done_text, "done": True, "eval_count": 3}))
    return lines


def chat(*tokens: str, tool_calls: list[Any] | None = None) -> list[bytes]:
    lines = [line({"message": {"role": "assistant", "content": t}, "done": False}) for t in tokens]
    if tool_calls:
        lines.append(
            line(
                {
                    "message": {"role": "assistant", "content": "", "tool_calls": tool_calls},
                    "done": False,
                }
            )
        )
    lines.append(line({"message": {"role": "assistant", "content": ""}, "done": True}))
    return lines


def run(chunks: list[bytes], kind: str = "generate", **kw: Any) -> tuple[Writer, Any]:
    writer = make_writer(**{k: kw.pop(k) for k in ("tty", "err_tty", "color") if k in kw})
    options = {"jsonl": False, "show_thinking": True, "keep": False, **kw}
    streamer = Streamer(kind, writer, **options)  # type: ignore[arg-type]
    reply = streamer.run(chunks)
    if not options["jsonl"]:
        writer.finish()
    return writer, reply


def test_text_is_written_once_per_network_read() -> None:
    lines = gen("Hel", "lo", " world")
    writer, reply = run([lines[0], lines[1] + lines[2], lines[3]])
    assert out(writer) == b"Hello world\n"
    assert writer.streams.stdout.flushes[:2] == [b"Hel", b"lo world"]  # type: ignore[attr-defined]
    assert reply.done is not None


def test_text_in_the_done_line_is_printed() -> None:
    writer, _ = run(gen("The end", done_text=" is here."))
    assert out(writer) == b"The end is here.\n"


def test_no_extra_newline_when_the_answer_ends_with_one() -> None:
    writer, _ = run(gen("line one\n", "line two\n"))
    assert out(writer) == b"line one\nline two\n"


def test_no_output_no_newline() -> None:
    writer, _ = run(gen())
    assert out(writer) == b""


def test_utf8_split_across_reads_is_written_whole() -> None:
    body = b"".join(gen("héllo ", "wörld ✓ 🎉"))
    writer, _ = run([body[i : i + 1] for i in range(len(body))])
    assert out(writer).decode("utf-8") == "héllo wörld ✓ 🎉\n"


def test_stream_without_done_is_a_protocol_error_after_writing_what_came() -> None:
    lines = gen("partial", " answer")[:-1]
    writer = make_writer()
    with pytest.raises(ProtocolError) as info:
        Streamer("generate", writer, jsonl=False, show_thinking=True, keep=False).run(lines)
    assert "ended before the model finished" in info.value.message
    assert out(writer) == b"partial answer"


def test_error_line_mid_stream_keeps_earlier_text_and_raises() -> None:
    chunks = [line({"response": "so far", "done": False}), line({"error": "out of memory"})]
    writer = make_writer()
    with pytest.raises(ServerError) as info:
        Streamer("generate", writer, jsonl=False, show_thinking=True, keep=False).run(chunks)
    assert info.value.message == "out of memory"
    assert out(writer) == b"so far"


def test_error_line_in_the_same_read_as_text_keeps_the_text() -> None:
    chunk = line({"response": "so far", "done": False}) + line({"error": "boom"})
    writer = make_writer()
    with pytest.raises(ServerError):
        Streamer("generate", writer, jsonl=False, show_thinking=True, keep=False).run([chunk])
    assert out(writer) == b"so far"


def test_thinking_goes_to_stderr_never_stdout() -> None:
    writer, _ = run(gen("Answer.", thinking=("Let me ", "think.")))
    assert out(writer) == b"Answer.\n"
    assert err(writer) == b"Let me think.\n"


def test_hide_thinking() -> None:
    writer, _ = run(gen("Answer.", thinking=("hmm",)), show_thinking=False)
    assert out(writer) == b"Answer.\n"
    assert err(writer) == b""


def test_thinking_is_dim_only_with_colour() -> None:
    writer, _ = run(gen("A", thinking=("t",)), color=True, err_tty=True)
    assert err(writer) == b"\x1b[2mt\x1b[0m\n"


def test_chat_content_and_tool_calls() -> None:
    call = {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    writer, reply = run(chat("Let me check.", tool_calls=[call]), kind="chat", keep=True)
    assert out(writer).decode().splitlines() == [
        "Let me check.",
        '{"tool_call":{"name":"get_weather","arguments":{"city":"Paris"}}}',
    ]
    assert reply.message() == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [call],
    }


def test_jsonl_passes_every_line_through_unchanged() -> None:
    lines = gen("a", "é", done_text="z")
    writer, _ = run([b"".join(lines)], jsonl=True)
    assert out(writer) == b"".join(lines)
    assert json.loads(out(writer).splitlines()[-1])["done"] is True


def test_jsonl_skips_blank_lines_and_writes_the_error_line() -> None:
    chunks = [b"\n", line({"response": "a", "done": False}), b"\n", line({"error": "boom"})]
    writer = make_writer()
    with pytest.raises(ServerError):
        Streamer("generate", writer, jsonl=True, show_thinking=True, keep=False).run(chunks)
    assert out(writer) == line({"response": "a", "done": False}) + line({"error": "boom"})


def test_not_json_line_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError) as info:
        run([line({"response": "a", "done": False}), b"this is not json\n"])
    assert "this is not json" in info.value.message


def test_control_characters_are_visible_on_a_terminal_only() -> None:
    text = "a\x1b]0;pwned\x07b\x1b[2Jc\x9bd\te\n"
    chunks = gen(text)
    tty_writer, _ = run(chunks, tty=True)
    assert out(tty_writer) == b"a^[]0;pwned^Gb^[[2Jc<U+009B>d\te\n"
    pipe_writer, _ = run(chunks)
    assert out(pipe_writer) == text.encode()


def test_visible_keeps_newline_and_tab_and_printables() -> None:
    assert visible("ok\tfine\n✓") == "ok\tfine\n✓"
    assert visible("\x00\x7f\x85") == "^@^?<U+0085>"


def test_raw_copies_bytes_and_reports_an_error_line() -> None:
    writer = make_writer()
    body = [b'{"status":"pulling"}\n{"sta', b'tus":"x"}\n{"error":"no space"}\n', b"tail"]
    seen = copy_response(body, writer)
    assert seen.error == "no space"
    assert out(writer) == b"".join(body)
    assert (seen.last_line, seen.tail) == (b'{"error":"no space"}', b"tail")


@pytest.mark.parametrize(
    ("body", "unfinished"),
    [
        ([b'{"response":"a","done":false}\n{"response":"b","done":false}\n'], True),
        ([b'{"response":"a","done":false}\n', b'{"done":true}\n\n\n'], False),
        ([b'{"done":false}\n{"done":tr', b"ue}"], False),  # last line without a newline
        ([b'{"response":"a","done":false}\n\n  \n'], True),  # trailing blank lines
        ([b'{"status":"pulling"}\n{"status":"success"}\n'], False),  # /api/pull: no done
        ([b'{"models":[]}'], False),  # /api/tags
        ([b"Ollama is running"], False),  # not JSON: copied, not judged
        ([b""], False),
    ],
)
def test_raw_knows_a_stream_that_ended_before_done(body: list[bytes], unfinished: bool) -> None:
    writer = make_writer()
    assert copy_response(body, writer).unfinished() is unfinished
    assert out(writer) == b"".join(body)


def test_format_stats_like_ollama_verbose() -> None:
    text = format_stats(
        {
            "total_duration": 2_500_000_000,
            "load_duration": 1_000_000,
            "prompt_eval_count": 26,
            "prompt_eval_duration": 130_000_000,
            "eval_count": 259,
            "eval_duration": 4_232_000_000,
        }
    )
    assert "total duration:       2.500s" in text
    assert "prompt eval count:    26 token(s)" in text
    assert "prompt eval rate:     200.00 tokens/s" in text
    assert "eval rate:            61.20 tokens/s" in text


def test_tool_call_and_jsonl_lines_are_made_visible_on_a_terminal() -> None:
    call = {"function": {"name": "f\x9b", "arguments": {"x": "\x7f"}}}
    writer, _ = run(chat(tool_calls=[call]), kind="chat", tty=True)
    assert out(writer) == b'{"tool_call":{"name":"f<U+009B>","arguments":{"x":"^?"}}}\n'
    lines = [line({"response": "\u009b[2J", "done": False}), line({"response": "", "done": True})]
    writer, _ = run(lines, jsonl=True, tty=True)
    assert b"\xc2\x9b" not in out(writer)
    assert out(writer).startswith(b'{"response":"<U+009B>[2J"')


def test_error_messages_cannot_drive_the_terminal() -> None:
    from ostream.output import write_error

    stderr = io.BytesIO()
    write_error(Streams(None, stderr), "bad \x1b]0;title\x07 thing\nmore")
    assert stderr.getvalue() == b"ostream: error: bad ^[]0;title^G thing more\n"


def test_lines_after_done_in_the_same_read_are_ignored() -> None:
    chunk = b"".join(gen("a")) + line({"response": "AFTER", "done": False})
    writer, reply = run([chunk])
    assert out(writer) == b"a\n"
    assert reply.done is not None
    writer, _ = run([chunk], jsonl=True)
    assert b"AFTER" not in out(writer)
    assert out(writer) == b"".join(gen("a"))


def test_jsonl_drops_crs_and_blank_lines_but_keeps_the_objects() -> None:
    lines = gen("a", "b")
    chunk = b"\r\n\n".join(lines_.rstrip(b"\n") for lines_ in lines) + b"\r\n"
    writer, _ = run([chunk], jsonl=True)
    assert out(writer) == b"".join(lines)


def test_thinking_is_made_visible_on_a_terminal_stderr_only() -> None:
    writer, _ = run(gen("A", thinking=("\x1b[2Jhmm",)), err_tty=True)
    assert err(writer) == b"^[[2Jhmm\n"
    writer, _ = run(gen("A", thinking=("\x1b[2Jhmm",)))
    assert err(writer) == b"\x1b[2Jhmm\n"


# --- the same, end to end through a real process -------------------------------------------


def test_text_before_a_line_that_is_not_json_is_written_before_the_error(
    fake_ollama: FakeOllama,
) -> None:
    fake_ollama.script(Reply(events=[Send(b'{"response":"hello","done":false}\nnot json\n')]))
    result = proc.run(["generate", "-m", "m", "x"], fake_ollama.url)
    assert result.returncode == 5
    assert result.stdout == b"hello\n"


def test_jsonl_compacts_spaced_server_lines(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(
        Reply(
            events=[
                Send(b'{"response": "a", "done": false}\n'),
                Send(b'{"response": "", "done": true}  \n'),
            ]
        )
    )
    result = proc.run(["generate", "-m", "m", "--jsonl", "x"], fake_ollama.url)
    assert result.returncode == 0
    assert result.stdout == b'{"response":"a","done":false}\n{"response":"","done":true}\n'


@pytest.mark.parametrize("text", ['He said "hi", <b>then</b> & left', 'key": <v>'])
def test_jsonl_passes_a_compact_line_through_byte_for_byte(
    fake_ollama: FakeOllama, text: str
) -> None:
    fake_ollama.script(Reply(events=gen_chunks([text])))
    result = proc.run(["generate", "-m", "m", "--jsonl", "x"], fake_ollama.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == fake_ollama.requests[-1].sent_bytes  # Go's \u003c escapes kept


# --- a lone surrogate escape (\ud83d) from a broken server or proxy -----------------------


def test_a_lone_surrogate_in_text_becomes_a_replacement_character() -> None:
    w = make_writer()
    body = [b'{"response":"a\\ud83d","done":false}\n', b'{"response":"b","done":true}\n']
    Streamer("generate", w, jsonl=False, show_thinking=True, keep=False).run(body)
    assert out(w) == "a\ufffdb\n".encode()  # the last text carries the final newline


def test_a_lone_surrogate_in_thinking_becomes_a_replacement_character() -> None:
    w = make_writer()
    body = [b'{"response":"","thinking":"x\\udc00","done":false}\n{"response":"ok","done":true}']
    Streamer("generate", w, jsonl=False, show_thinking=True, keep=False).run(body)
    assert out(w) == b"ok\n"
    assert "x\ufffd".encode() in err(w)


def test_a_lone_surrogate_in_jsonl_keeps_its_escape() -> None:
    w = make_writer()
    spaced = b'{"response": "a\\ud83d", "done": true}\n'  # spaced: re-encoded, not passed
    Streamer("generate", w, jsonl=True, show_thinking=True, keep=False).run([spaced])
    assert out(w) == b'{"response":"a\\ud83d","done":true}\n'


# --- values of the wrong type in a server's lines ------------------------------------------


@pytest.mark.parametrize(
    ("lines", "stdout"),
    [
        ([{"response": "a", "thinking": 5, "done": False}, {"response": "b", "done": True}], b"ab"),
        ([{"response": "a", "error": None, "done": False}, {"response": "b", "done": True}], b"ab"),
        ([{"response": 7, "done": False}, {"response": "b", "done": True}], b"b"),
    ],
)
def test_values_of_the_wrong_type_are_skipped_not_fatal(
    lines: list[dict[str, Any]], stdout: bytes
) -> None:
    w = make_writer()
    body = [json.dumps(obj).encode() + b"\n" for obj in lines]
    reply = Streamer("generate", w, jsonl=False, show_thinking=True, keep=True).run(body)
    assert out(w) == stdout + b"\n"  # the last text carries the final newline
    assert reply.done is not None


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
    w = make_writer()
    Streamer("generate", w, jsonl=True, show_thinking=True, keep=False).run([block + b"\n"])
    expected = b"".join(
        json.dumps(json.loads(x), separators=(",", ":")).encode() + b"\n"
        for x in block.split(b"\n")
    )
    assert out(w) == expected


def test_a_stream_without_done_raises_a_protocol_error_after_writing_its_text() -> None:
    w = make_writer()
    with pytest.raises(ProtocolError):
        Streamer("generate", w, jsonl=False, show_thinking=True, keep=False).run(
            [b'{"response":"a","done":false}\n']
        )
    assert out(w) == b"a"

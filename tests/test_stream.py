"""The stream engine and the writers, in-process: what reaches stdout and stderr."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from ostream.errors import ProtocolError, ServerError
from ostream.output import Streams, Writer, format_stats, visible
from ostream.rawbody import copy_raw
from ostream.stream import Streamer


class Recorder(io.BytesIO):
    """A binary stream that remembers each flush, to prove per-read writes."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes: list[bytes] = []
        self._mark = 0

    def flush(self) -> None:
        value = self.getvalue()
        self.flushes.append(value[self._mark :])
        self._mark = len(value)


def make_writer(*, tty: bool = False, err_tty: bool = False, color: bool = False) -> Writer:
    return Writer(Streams(Recorder(), Recorder(), tty, err_tty, color))


def out(writer: Writer) -> bytes:
    return writer.streams.stdout.getvalue()  # type: ignore[attr-defined]


def err(writer: Writer) -> bytes:
    return writer.streams.stderr.getvalue()  # type: ignore[attr-defined]


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
    seen = copy_raw(body, writer)
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
    assert copy_raw(body, writer).unfinished() is unfinished
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
    from ostream.errors import report

    stderr = io.BytesIO()
    report("bad \x1b]0;title\x07 thing\nmore", stderr)
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


def test_writer_on_a_pipe_writes_each_piece_at_once_and_in_order() -> None:
    import os

    read_end, write_end = os.pipe()
    try:
        stdout = open(write_end, "wb", closefd=False)  # noqa: SIM115
        stdout.write(b"before ")  # left in the buffer by someone else: must come first
        writer = Writer(Streams(stdout, io.BytesIO(), False, False, False))
        for piece in ("a", "b", "c"):
            writer.text(piece)
            assert os.read(read_end, 100) == (b"before a" if piece == "a" else piece.encode())
        writer.line(b'{"done":true}')
        assert os.read(read_end, 100) == b'\n{"done":true}\n'
    finally:
        os.close(read_end)
        os.close(write_end)

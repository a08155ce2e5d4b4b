"""--jsonl is faithful: only the white space between tokens goes, the server's bytes stay."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pytest

from ostream.errors import ProtocolError, ServerError
from ostream.ndjson import compact_line, compact_object, spaced
from ostream.output import Streams, Writer
from ostream.stream import Streamer
from ostream.testing import FakeOllama, Reply, Send
from tests.inproc import invoke
from tests.proc import run

DONE = b'{"response":"","done":true}\n'

# (as the server sent it, as --jsonl writes it)
FAITHFUL = [
    (b'{"n": 1e400, "response": "a", "done": false}', b'{"n":1e400,"response":"a","done":false}'),
    (b'{"n" : 1.50 , "m": -0.0, "done": false}', b'{"n":1.50,"m":-0.0,"done":false}'),
    (b'{"a": 1, "a": 2, "done": false}', b'{"a":1,"a":2,"done":false}'),
    (
        b'{"response": "say \\"hi , there\\" : { x } ", "done": false}',
        b'{"response":"say \\"hi , there\\" : { x } ","done":false}',
    ),
    (
        b'{"response": "\\u00e9\\/\\\\ ", "done": false}',
        b'{"response":"\\u00e9\\/\\\\ ","done":false}',
    ),
    (b'\t{ "ok" :[ 1 ,\t2 ] ,"done":false }\r', b'{"ok":[1,2],"done":false}'),
    (b'{"response":" the","done":false}', b'{"response":" the","done":false}'),
]


def jsonl(chunks: list[bytes], keep: bool = False) -> tuple[bytes, Exception | None]:
    writer = Writer(Streams(io.BytesIO(), io.BytesIO(), False, False, False))
    streamer = Streamer("generate", writer, jsonl=True, show_thinking=True, keep=keep)
    try:
        streamer.run(chunks)
    except (ServerError, ProtocolError) as exc:
        return writer.streams.stdout.getvalue(), exc  # type: ignore[attr-defined]
    return writer.streams.stdout.getvalue(), None  # type: ignore[attr-defined]


@pytest.mark.parametrize(("sent", "written"), FAITHFUL)
def test_a_line_keeps_its_strings_numbers_and_duplicate_keys(sent: bytes, written: bytes) -> None:
    assert compact_line(sent) == written
    assert jsonl([sent + b"\n", DONE]) == (written + b"\n" + DONE, None)


def test_spaced_lines_in_one_read_are_compacted_each() -> None:
    block = b"".join(sent + b"\n" for sent, _ in FAITHFUL) + DONE
    expected = b"".join(written + b"\n" for _, written in FAITHFUL) + DONE
    assert jsonl([block]) == (expected, None)


def test_compact_lines_in_one_read_are_written_as_they_are() -> None:
    block = b'{"response":"a b","done":false}\n{"response":" x","n":1.50,"done":false}\n'
    assert not spaced(block[:-1], lines=True)
    assert jsonl([block, DONE]) == (block + DONE, None)


def test_a_spaced_line_mid_stream_among_compact_ones() -> None:
    chunks = [b'{"response":"a","done":false}\n', b'{"response": "b" ,\t"n": 1.50}\n', DONE]
    assert jsonl(chunks) == (
        b'{"response":"a","done":false}\n{"response":"b","n":1.50}\n' + DONE,
        None,
    )


def test_a_spaced_error_line_mid_stream_is_one_compact_line() -> None:
    stdout, error = jsonl([b'{"response":"a","done":false}\n', b'{ "error" : "out of memory" }\n'])
    assert stdout == b'{"response":"a","done":false}\n{"error":"out of memory"}\n'
    assert isinstance(error, ServerError) and str(error) == "out of memory"


@pytest.mark.parametrize(
    "obj",
    [
        {"a": [1, {"b": None}], "c": "x , y : z", "d": True},
        {"s": ' { } [ ] , : " \\ ', "e": []},
        {"deep": [[[]], {}], "n": -1.5e-7},
    ],
)
@pytest.mark.parametrize("indent", [None, 0, 2, "\t"])
def test_every_layout_of_an_object_compacts_to_the_same_line(obj: Any, indent: Any) -> None:
    compact = json.dumps(obj, separators=(",", ":")).encode()
    assert compact_line(json.dumps(obj, indent=indent).encode()) == compact


def random_object(rng: random.Random, depth: int = 0) -> Any:
    """An object of two or more keys: strings full of spaces and JSON punctuation,
    numbers, literals, and nested arrays and objects."""
    words = ["a", " ", "{", "}", "[", "]", ",", ":", '"', "\\", "\t", "é", " x , y : z "]

    def value(level: int) -> Any:
        kind = rng.randrange(6 if level < 2 else 4)
        if kind == 0:
            return "".join(rng.choice(words) for _ in range(rng.randrange(6)))
        if kind == 1:
            return rng.choice([0, -1, 1.5, 1e300, True, False, None])
        if kind in (2, 3):
            return rng.randrange(-1000, 1000)
        if kind == 4:
            return [value(level + 1) for _ in range(rng.randrange(4))]
        return {f"k{i}": value(level + 1) for i in range(rng.randrange(4))}

    return {f"key {i}": value(depth) for i in range(2 + rng.randrange(12))}


@pytest.mark.parametrize("seed", range(40))
def test_white_space_between_tokens_is_always_noticed(seed: int) -> None:
    obj = random_object(random.Random(seed))
    compact = json.dumps(obj, separators=(",", ":"), ensure_ascii=seed % 2 == 0).encode()
    for items, keys in [(", ", ":"), (",", ": "), (" ,", ":"), (",", " :"), (",\n\t", ":\r ")]:
        line = json.dumps(obj, separators=(items, keys), ensure_ascii=seed % 2 == 0).encode()
        assert spaced(line)
        assert compact_line(line) == compact
        assert compact_object(line) is None
    for line in (b" " + compact, compact + b"\r", b"\t" + compact + b" "):
        assert spaced(line) and compact_line(line) == compact
        assert spaced(compact + b"\n" + line, lines=True)
        assert compact_object(line) is None
        assert compact_object(compact + b"\n" + line) is None
    assert compact_object(compact) in (obj, None)  # None: a string that looks spaced
    assert compact_object(compact + b"\n" + compact) is None


# --- the shortcut for Ollama's case: one compact line a read, passed on as it came --------


@pytest.mark.parametrize(
    "line",
    [
        b'{"response":" the","done":false}',
        b'{"response":"    indented    code    ","n":1.50,"a":1,"a":2}',
        b'{"response":"a b c d e f g","done":false}',
        b'{"response":"\\u00e9 \\ud83d","done":false,"ctx":[1,2,{"x":"y z"}]}',
    ],
)
def test_a_compact_line_is_one_object_without_a_second_parse(line: bytes) -> None:
    assert compact_object(line) == json.loads(line)
    assert jsonl([line + b"\n", DONE]) == (line + b"\n" + DONE, None)


@pytest.mark.parametrize(
    "line",
    [
        b'{"a":1 ,"b":2}',
        b'{"a":1, "b":2}',
        b'{"a": 1}',
        b'{"a" :1}',
        b'{ "a":1}',
        b'{"a":[ 1]}',
        b'{"a":[1 ]}',
        b'{"a":1 }',
        b'{"s":"a b c d","a":1, "b":2}',  # a second space: the scan in C
        b' {"a":1}',
        b'{"a":1} ',
        b'{"a":\t1}',
        b'{"a":1}\r',
        b'{"a":\n1}',
        b'{"a":1}\n',
        b'\n{"a":1}',
        b'{"a":1}\n{"b":2}',
        b"[1]",
        b'"x"',
        b'{"a":1}x',
        b'{"a":tru}',
        b'{"a":"\xff"}',
        b"",
    ],
)
def test_anything_but_one_compact_object_takes_the_general_path(line: bytes) -> None:
    assert compact_object(line) is None


def test_done_on_a_middle_line_of_a_read_ends_the_stream_there() -> None:
    a, b = b'{"response":"a","done":false}\n', b'{"response":"b","done":false}\n'
    assert jsonl([a + DONE + b, b]) == (a + DONE, None)


def test_an_error_line_in_a_read_of_several_is_written_then_raised() -> None:
    a, error = b'{"response":"a","done":false}\n', b'{"error":"out of memory"}\n'
    stdout, exc = jsonl([a + error + a])
    assert stdout == a + error
    assert isinstance(exc, ServerError) and str(exc) == "out of memory"


def test_an_error_line_alone_in_its_read_is_written_then_raised() -> None:
    a, error = b'{"response":"a","done":false}\n', b'{"error":{"code":1},"done":true}\n'
    stdout, exc = jsonl([a, error, a])
    assert stdout == a + error
    assert isinstance(exc, ServerError) and str(exc) == '{"code": 1}'


def test_a_line_that_is_not_json_after_compact_ones_stops_the_stream() -> None:
    a = b'{"response":"a","done":false}\n'
    stdout, exc = jsonl([a, b'{"response":"b",\n', DONE])
    assert stdout == a
    assert isinstance(exc, ProtocolError)


def test_the_answer_is_kept_from_compact_spaced_and_batched_lines() -> None:
    writer = Writer(Streams(io.BytesIO(), io.BytesIO(), False, False, False))
    chunks = [
        b'{"response":"a","thinking":"t","done":false}\n',
        b'{"response": "b", "done": false}\n',
        b'{"response":"c","done":false}\n{"response":"d","done":false}\n',
        DONE,
    ]
    streamer = Streamer("generate", writer, jsonl=True, show_thinking=True, keep=True)
    reply = streamer.run(chunks)
    assert reply.message() == {"role": "assistant", "content": "abcd", "thinking": "t"}
    assert reply.done == json.loads(DONE)


def test_ollamas_compact_lines_take_the_cheap_path() -> None:
    assert not spaced(
        b'{"model":"m","created_at":"2026-01-01T00:00:00Z","response":" the","done":false}'
    )
    assert spaced(b'{"a":1, "b":2}') and spaced(b'{"a" :1}') and spaced(b' {"a":1}')


PRETTY_500 = b'{\n  "error": "llama runner \\"crashed\\" : bad",\n  "code": 1.50\n}\n'
PRETTY_500_LINE = b'{"error":"llama runner \\"crashed\\" : bad","code":1.50}\n'


def pretty_500() -> Reply:
    return Reply(
        status=500,
        content_type="application/json; charset=utf-8",
        events=[Send(PRETTY_500)],
        content_length=True,
    )


def test_a_pretty_printed_error_body_is_one_compact_line(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(pretty_500())
    result = invoke(fake_ollama, "generate", "-m", "m", "--jsonl", "hi")
    assert result.exit_code == 1
    assert result.stdout_bytes == PRETTY_500_LINE


SPACED_STREAM = [
    Send(b'{"model":"m","response":"a","done":false}\n'),
    Send(b'{"model": "m", "response": "b \\"c\\"", "n": 1e400, "n": 1.50, "done": false}\n'),
    Send(b'{\t"model":"m" , "response":"","done":true}\n'),
]


@pytest.mark.parametrize(
    ("reply", "code", "stdout"),
    [
        (
            Reply(events=SPACED_STREAM),
            0,
            b'{"model":"m","response":"a","done":false}\n'
            b'{"model":"m","response":"b \\"c\\"","n":1e400,"n":1.50,"done":false}\n'
            b'{"model":"m","response":"","done":true}\n',
        ),
        (pretty_500(), 1, PRETTY_500_LINE),
    ],
    ids=["spaced-stream", "pretty-500"],
)
def test_jsonl_process_output_is_one_faithful_line_per_object(
    fake_ollama: FakeOllama, reply: Reply, code: int, stdout: bytes
) -> None:
    fake_ollama.script(reply)
    result = run(["generate", "-m", "m", "--jsonl", "hi"], fake_ollama.url)
    assert result.returncode == code, result.stderr
    assert result.stdout == stdout
    assert all(json.loads(line) for line in result.stdout.splitlines())

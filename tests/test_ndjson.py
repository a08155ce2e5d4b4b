"""Framing on b"\n" only, whatever the network reads look like."""

from __future__ import annotations

import json
import random

import pytest

from ostream.errors import ExitCode, ProtocolError
from ostream.ndjson import LineFramer, compact_object, json_object, parse, parse_block
from ostream.testing import FakeOllama, Reply, Send
from tests.inproc import invoke


def frame(reads: list[bytes]) -> list[bytes]:
    framer = LineFramer()
    lines: list[bytes] = []
    for data in reads:
        block = framer.feed(data)
        if block is not None:
            lines.extend(block.split(b"\n"))
    rest = framer.rest()
    return lines + ([rest] if rest else [])


def test_many_lines_in_one_read() -> None:
    assert frame([b'{"a":1}\n{"a":2}\n{"a":3}\n']) == [b'{"a":1}', b'{"a":2}', b'{"a":3}']


def test_a_line_split_over_many_reads_at_every_position() -> None:
    body = '{"response":"héllo wörld ✓ 🎉"}\n{"done":true}\n'.encode()
    for cut in range(1, len(body)):
        lines = frame([body[:cut], body[cut:]])
        assert [json.loads(line) for line in lines] == [
            {"response": "héllo wörld ✓ 🎉"},
            {"done": True},
        ]


def test_one_byte_reads_keep_multibyte_characters_whole() -> None:
    body = '{"response":"🎉✓é"}\n'.encode()
    assert frame([body[i : i + 1] for i in range(len(body))]) == [body[:-1]]


def test_random_chunkings_give_the_same_lines() -> None:
    objs = [{"response": "x" * n + "é", "n": n} for n in range(50)]
    body = b"".join(json.dumps(o, ensure_ascii=False).encode() + b"\n" for o in objs)
    rng = random.Random(7)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(body)), 30))
        reads = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        assert [json.loads(line) for line in frame(reads)] == objs


def test_blank_lines_are_returned_and_parse_as_none() -> None:
    lines = frame([b'{"a":1}\n\n  \r\n{"a":2}\n'])
    parsed = [parse(line) for line in lines]
    assert [p for p in parsed if p is not None] == [{"a": 1}, {"a": 2}]
    assert parsed.count(None) == 2


def test_final_line_without_newline_is_kept() -> None:
    assert frame([b'{"done":true,', b'"done_reason":"load"}']) == [
        b'{"done":true,"done_reason":"load"}'
    ]


def test_huge_line_over_many_reads_is_joined_once() -> None:
    size = 50_000_000
    payload = b'{"response":"' + b"x" * size + b'"}\n'
    reads = [payload[i : i + 65536] for i in range(0, len(payload), 65536)]
    lines = frame(reads)
    assert len(lines) == 1
    assert len(lines[0]) == len(payload) - 1


def test_crlf_lines_parse() -> None:
    assert parse(b'{"a":1}\r') == {"a": 1}


@pytest.mark.parametrize("line", [b"this is not json", b"<html>", b'{"a":'])
def test_not_json_is_a_protocol_error_with_an_excerpt(line: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse(line)
    assert info.value.code == ExitCode.PROTOCOL
    assert line.decode()[:5] in info.value.message


@pytest.mark.parametrize("line", [b"[1,2]", b'"text"', b"42"])
def test_json_that_is_not_an_object_is_a_protocol_error(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse(line)


def test_invalid_utf8_in_a_line_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse(b'{"response":"\xff\xfe"}')


def test_parse_block_takes_whole_lines_and_skips_blank_ones() -> None:
    from ostream.ndjson import parse_block

    block = '{"a":1}\n\n  {"b":"é"}  \n\r\n{"c":[1,{"d":null}]}\r'.encode()
    assert parse_block(block) == ([{"a": 1}, {"b": "é"}, {"c": [1, {"d": None}]}], None)


@pytest.mark.parametrize(
    "block", [b'{"a":1} trailing', b'{"a":1}\n[1]', b'{"a":1}\n{"b":"\xff"}', b'{"a":1}{"b":2}']
)
def test_parse_block_stops_at_what_is_not_one_object_a_line(block: bytes) -> None:
    from ostream.ndjson import parse_block

    objects, error = parse_block(block)
    assert isinstance(error, ProtocolError)
    assert objects == ([] if block.startswith(b'{"a":1} ') or b"}{" in block else [{"a": 1}])


# --- strict JSON: only JSON's white space, no NaN or Infinity ---------------------------

FIRST = b'{"response":"ok","done":false}\n'
LAST = b'{"response":"","done":true}\n'
NOT_JSON = [
    b'{"response":"a","done":false}\x0b',  # str.isspace() is true for these, JSON's is not
    b'{"response":"a","done":false}\x0c',
    b'{"response":"a","done":false}\x1c',
    b'{"response":"a","done":false}\xc2\x85',  # U+0085
    b'\x1f{"response":"a","done":false}',
    b'{"response":"a","n":NaN,"done":false}',  # Python's json takes these three
    b'{"response":"a","n":Infinity,"done":false}',
    b'{"response": "a", "n": -Infinity, "done": false}',
    b"\x0b",  # not a blank line
]


@pytest.mark.parametrize("line", NOT_JSON)
@pytest.mark.parametrize("mode", ["text", "jsonl", "raw"])
def test_a_line_that_is_not_strict_json_is_exit_5(
    fake_ollama: FakeOllama, line: bytes, mode: str
) -> None:
    """Each of these lines, alone in its read or after another line, is "a line was not
    JSON": exit 5, and --jsonl passes on only what came before it."""
    for events in (
        [Send(FIRST), Send(line + b"\n"), Send(LAST)],
        [Send(FIRST + line + b"\n" + LAST)],
    ):
        fake_ollama.script(Reply(events=events))
        if mode == "raw":
            result = invoke(fake_ollama, "raw", "-d", '{"model": "m", "prompt": "hi"}')
            assert result.stdout_bytes == FIRST + line + b"\n" + LAST  # byte for byte
        else:
            jsonl = ["--jsonl"] if mode == "jsonl" else []
            result = invoke(fake_ollama, "generate", "-m", "m", *jsonl, "hi")
            assert result.stdout_bytes == (FIRST if jsonl else b"ok\n")
        assert result.exit_code == 5, result.stderr
        assert "not JSON" in result.stderr


@pytest.mark.parametrize("line", NOT_JSON)
def test_parse_block_and_compact_object_refuse_what_is_not_strict_json(line: bytes) -> None:
    assert compact_object(line) is None
    objects, bad = parse_block(FIRST + line)
    assert objects == [{"response": "ok", "done": False}]
    assert isinstance(bad, ProtocolError)
    assert json_object(line) is None


def test_json_white_space_around_a_line_is_still_taken() -> None:
    assert parse_block(b' \t{"a":1}\r ')[0] == [{"a": 1}]
    assert parse_block(b'{"a":1}\n \t\r\n{"b":2}')[0] == [{"a": 1}, {"b": 2}]

"""-x / --extract-last: the contents of the first (last) fenced code block, CommonMark's
fences, streamed as they arrive; no block: exit 1 with a message."""

from __future__ import annotations

import pytest

from ostream.extract import FenceScanner
from ostream.testing import FakeOllama, Reply, Send, Stall, chat_chunks, gen_chunks, ndjson
from tests.inproc import invoke
from tests.proc import read_until, spawn

# (answer, first block's contents, last block's contents); None: no block.
CASES = [
    ("no code here\n", None, None),
    ("Here:\n```python\nprint(1)\n```\nDone.\n", "print(1)\n", "print(1)\n"),
    ("~~~\na\n~~~\n", "a\n", "a\n"),
    ("````md\n```\ninner\n```\n````\n", "```\ninner\n```\n", "```\ninner\n```\n"),
    ("~~~\n```\n~~~\n", "```\n", "```\n"),  # a backtick line does not close a tilde fence
    ("```\na\n``\nb\n````  \nafter\n", "a\n``\nb\n", "a\n``\nb\n"),  # longer closes, blanks
    ("```\nfirst\n```\ntext\n~~~sh\nsecond\n~~~\n", "first\n", "second\n"),
    ("```sh\nunclosed\nto the end", "unclosed\nto the end", "unclosed\nto the end"),
    ("```\n```\n", "", ""),  # an empty block is a block
    ("text ```inline``` text\n", None, None),
    ("```a`b\nnot a fence\n```\n", "", ""),  # the second ``` opens an unclosed empty block
    ("  ```\n  indented\n    more\n ```\n", "indented\n  more\n", "indented\n  more\n"),
    ("    ```\ncode block, not a fence\n", None, None),  # 4 spaces: not a fence
    ("``\nnot\n``\n", None, None),  # two backticks are not a fence
    ("```\r\nwin\r\n```\r\n", "win\r\n", "win\r\n"),
    ("```\nends\n   ```", "ends\n", "ends\n"),  # a closing fence on the last line
    ("```\nx\n    ```\n", "x\n    ```\n", "x\n    ```\n"),  # 4 spaces: content
    ("```\n``` not closing\n```\n", "``` not closing\n", "``` not closing\n"),
    ("intro\n```", "", ""),  # a fence on the last line: an empty block
    ("é ```\n```py\nü = '€'\n```\n", "ü = '€'\n", "ü = '€'\n"),
]


def scan(pieces: list[str], *, last: bool) -> tuple[str, bool]:
    scanner = FenceScanner(last=last)
    out = "".join(scanner.feed(piece) for piece in pieces) + scanner.end()
    return out, scanner.found


@pytest.mark.parametrize(("answer", "first", "last"), CASES)
def test_every_split_of_the_answer_gives_the_same_block(
    answer: str, first: str | None, last: str | None
) -> None:
    for i in range(len(answer) + 1):
        for j in range(i, len(answer) + 1):
            pieces = [answer[:i], answer[i:j], answer[j:]]
            assert scan(pieces, last=False) == (first or "", first is not None), pieces
            assert scan(pieces, last=True) == (last or "", last is not None), pieces


def test_one_character_at_a_time() -> None:
    for answer, first, last in CASES:
        assert scan(list(answer), last=False) == (first or "", first is not None)
        assert scan(list(answer), last=True) == (last or "", last is not None)


def test_the_first_block_streams_as_it_arrives() -> None:
    scanner = FenceScanner()
    assert scanner.feed("Sure:\n```py\nprint(") == "print("
    assert scanner.feed("1)\nx = 2") == "1)\nx = 2"
    assert scanner.feed("\n``") == "\n"  # held back: it may be the closing fence
    assert scanner.feed("`\nmore text\n```\nignored\n```\n") == ""
    assert scanner.end() == ""


def test_last_writes_nothing_before_the_end() -> None:
    scanner = FenceScanner(last=True)
    assert scanner.feed("```\none\n```\n```\ntwo\n```\n") == ""
    assert scanner.end() == "two\n"


def test_generate_x_writes_only_the_block(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(Reply(events=gen_chunks(["Here", ":\n```", "sh\nls -", "l\n``", "`\nBye"])))
    result = invoke(fake_ollama, "generate", "-m", "m", "-x", "hi")
    assert (result.exit_code, result.stdout) == (0, "ls -l\n")


def test_chat_extract_last(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(
        Reply(events=chat_chunks(["```\na\n```\n", "~~~\nb\n~~~\n"])), path="/api/chat"
    )
    result = invoke(fake_ollama, "chat", "-m", "m", "--extract-last", "hi")
    assert (result.exit_code, result.stdout) == (0, "b\n")


def test_no_block_is_exit_1_with_a_message(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", "-x", "hi")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "ostream: error: -x: the answer holds no fenced code block\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-x", "--jsonl"], "text mode"),
        (["-x", "--extract-last"], "together"),
    ],
)
def test_extract_needs_text_mode_and_one_choice(
    fake_ollama: FakeOllama, args: list[str], message: str
) -> None:
    result = invoke(fake_ollama, "generate", "-m", "m", *args, "hi")
    assert result.exit_code == 2
    assert message in result.stderr
    assert not fake_ollama.requests


def test_the_first_block_reaches_the_pipe_before_the_answer_ends(
    fake_ollama: FakeOllama,
) -> None:
    """End to end in a real process: the block's first line is out while the model
    is still answering (the stream stalls after it)."""
    lines = [{"response": "```py\n", "done": False}, {"response": "print(1)\n", "done": False}]
    fake_ollama.script(Reply(events=[Send(ndjson(*lines)), Stall(30)]))
    proc = spawn(["generate", "-m", "m", "-x", "hi"], fake_ollama.url)
    assert proc.stdout is not None
    try:
        assert read_until(proc.stdout, lambda d: b"print(1)\n" in d) == b"print(1)\n"
    finally:
        proc.kill()
        proc.communicate()

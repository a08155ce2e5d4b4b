"""batch input: the three line shapes, defaults, and lines that cannot run (never dropped)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from ostream.batch.ids import IdSet, id_hash
from ostream.batch.jobs import URLS, Defaults, Job, JobReader, wire_body
from ostream.batch.shard import Shard


def read(data: str | bytes, **kwargs: Any) -> list[Job]:
    data = data.encode() if isinstance(data, str) else data
    return list(JobReader(io.BytesIO(data), **kwargs))


def lines(*objects: Any) -> str:
    return "".join(json.dumps(obj) + "\n" for obj in objects)


@pytest.mark.parametrize("url", URLS)
def test_an_openai_batch_request_line_runs_unchanged(url: str) -> None:
    body = {"model": "m", "input": "x"}
    [job] = read(lines({"custom_id": "a1", "method": "POST", "url": url, "body": body}))
    assert (job.custom_id, job.url, job.body, job.error) == ("a1", url, body, None)


def test_bare_bodies_go_by_prompt_or_messages() -> None:
    generate, chat = read(
        lines(
            {"custom_id": "g", "model": "m", "prompt": "hi"},
            {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        )
    )
    assert (generate.url, generate.body) == ("/api/generate", {"model": "m", "prompt": "hi"})
    assert generate.custom_id == "g"  # and not sent to the server in the body
    assert chat.url == "/api/chat" and chat.custom_id == "line-2"


def test_text_mode_makes_every_line_a_prompt() -> None:
    jobs = read('{"not": "json to me"}\r\nsecond line \n\nlast', text=True, defaults=Defaults("m"))
    assert [(j.custom_id, j.url, j.body) for j in jobs] == [
        ("line-1", "/api/generate", {"prompt": '{"not": "json to me"}', "model": "m"}),
        ("line-2", "/api/generate", {"prompt": "second line ", "model": "m"}),
        ("line-4", "/api/generate", {"prompt": "last", "model": "m"}),
    ]


def test_blank_lines_are_skipped_but_counted_in_line_numbers() -> None:
    jobs = read('\n   \n{"model": "m", "prompt": "a"}\n\t\n{"model": "m", "prompt": "b"}')
    assert [(j.custom_id, j.line) for j in jobs] == [("line-3", 3), ("line-5", 5)]


def test_the_input_is_read_as_needed_not_whole() -> None:
    taken: list[int] = []

    def source() -> Iterator[bytes]:
        for n in range(1, 1_000_000):
            taken.append(n)
            yield json.dumps({"model": "m", "prompt": str(n)}).encode() + b"\n"

    jobs = iter(JobReader(source()))
    assert next(jobs).custom_id == "line-1"
    assert next(jobs).custom_id == "line-2"
    assert taken == [1, 2]


def test_defaults_fill_what_a_generate_body_leaves_out_and_the_body_wins() -> None:
    defaults = Defaults("dm", "dsys", {"seed": 1, "top_k": 5}, "json", "low", "5m")
    [filled, own] = read(
        lines(
            {"prompt": "a"},
            {
                "prompt": "b",
                "model": "bm",
                "system": "",
                "options": {"seed": 2},
                "format": {"type": "object"},
                "think": False,
                "keep_alive": 0,
            },
        ),
        defaults=defaults,
    )
    assert filled.body == {
        "prompt": "a",
        "model": "dm",
        "system": "dsys",
        "options": {"seed": 1, "top_k": 5},
        "format": "json",
        "think": "low",
        "keep_alive": "5m",
    }
    assert own.body is not None
    assert own.body["options"] == {"seed": 2, "top_k": 5}  # merged key by key, the body wins
    assert {k: own.body[k] for k in ("model", "system", "format", "think", "keep_alive")} == {
        "model": "bm",
        "system": "",
        "format": {"type": "object"},
        "think": False,
        "keep_alive": 0,
    }


def test_a_chat_system_default_is_a_first_message_only_without_one() -> None:
    user = {"role": "user", "content": "hi"}
    system = {"role": "system", "content": "mine"}
    without, with_own = read(
        lines({"messages": [user]}, {"messages": [user, system]}), defaults=Defaults("m", "S")
    )
    assert without.body is not None and with_own.body is not None
    assert without.body["messages"] == [{"role": "system", "content": "S"}, user]
    assert with_own.body["messages"] == [user, system]


def test_embed_and_openai_urls_take_only_the_defaults_they_understand() -> None:
    defaults = Defaults("m", "S", {"seed": 1}, "json", True, "5m")
    embed, v1 = read(
        lines(
            {"url": "/api/embed", "body": {"input": "x"}},
            {"url": "/v1/chat/completions", "body": {"messages": []}},
        ),
        defaults=defaults,
    )
    assert embed.body == {"input": "x", "model": "m", "options": {"seed": 1}, "keep_alive": "5m"}
    assert v1.body == {  # what maps to OpenAI's fields; no think, no keep_alive
        "messages": [{"role": "system", "content": "S"}],
        "model": "m",
        "seed": 1,
        "response_format": {"type": "json_object"},
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"prompt": NaN, "model": "m"}', "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"a string"', "not a JSON object"),
        (b"\xff\xfe", "not valid UTF-8"),
        (b'{"url": "/api/pull", "body": {"model": "m"}}', "url"),
        (b'{"body": {"model": "m", "prompt": "x"}}', "url"),
        (b'{"method": "GET", "url": "/api/generate", "body": {"model": "m"}}', "method"),
        (b'{"url": "/api/generate", "body": "text"}', "body"),
        (b'{"url": "/api/generate"}', "no body"),
        (b'{"prompt": "x"}', "no model"),
        (b'{"prompt": "x", "model": ""}', "model"),
        (b'{"prompt": "x", "model": 7}', "model"),
        (b'{"custom_id": 7, "prompt": "x", "model": "m"}', "custom_id"),
        (b'{"prompt": "x", "messages": [], "model": "m"}', "both"),
        (b'{"model": "m", "input": "x"}', "neither"),
    ],
)
def test_a_line_that_cannot_run_is_a_failed_job(line: bytes, message: str) -> None:
    [bad, good] = read(line + b'\n{"model": "m", "prompt": "next"}\n')
    assert bad.error is not None and message in bad.error
    assert bad.line == 1 and bad.custom_id == "line-1"
    assert good.error is None and good.custom_id == "line-2"  # the batch goes on


def test_a_bad_line_keeps_its_own_custom_id() -> None:
    [job] = read(lines({"custom_id": "x9", "url": "/nowhere", "body": {"model": "m"}}))
    assert job.custom_id == "x9" and job.error is not None


def test_method_post_in_any_case_and_missing_means_post() -> None:
    jobs = read(
        lines(
            {"method": "post", "url": "/api/generate", "body": {"model": "m", "prompt": "a"}},
            {"url": "/api/generate", "body": {"model": "m", "prompt": "b"}},
        )
    )
    assert [j.error for j in jobs] == [None, None]


def test_a_duplicate_custom_id_fails_and_the_first_runs() -> None:
    jobs = read(
        lines(
            {"custom_id": "a", "model": "m", "prompt": "1"},
            {"custom_id": "b", "model": "m", "prompt": "2"},
            {"custom_id": "a", "model": "m", "prompt": "3"},
            {"custom_id": "line-5", "model": "m", "prompt": "4"},
            {"model": "m", "prompt": "5"},  # line 5: its line-5 was taken above
        )
    )
    assert [(j.custom_id, j.error is None) for j in jobs] == [
        ("a", True),
        ("b", True),
        ("a", False),
        ("line-5", True),
        ("line-5", False),
    ]
    assert jobs[2].error == "duplicate custom_id 'a'"


def test_ids_already_done_are_skipped_and_counted() -> None:
    done = IdSet()
    done.add(id_hash("b"))
    data = lines(*({"custom_id": c, "model": "m", "prompt": c} for c in "abc")).encode()
    reader = JobReader(io.BytesIO(data), done=done)
    assert [j.custom_id for j in reader] == ["a", "c"]
    assert (reader.read, reader.skipped) == (3, 1)


def test_only_this_shards_jobs_are_read() -> None:
    ids = [f"id-{n}" for n in range(40)]
    data = lines(*({"custom_id": i, "model": "m", "prompt": "p"} for i in ids)).encode()
    seen: list[str] = []
    for index in range(3):
        reader = JobReader(io.BytesIO(data), shard=Shard(index, 3))
        mine = [j.custom_id for j in reader]
        assert all(Shard(index, 3).owns(i) for i in mine)
        assert reader.elsewhere == 40 - len(mine)
        seen += mine
    assert sorted(seen) == sorted(ids)


def test_wire_body_streams_native_answers_and_not_openai_ones() -> None:
    generate, embed, v1 = read(
        lines(
            {"model": "m", "prompt": "a", "stream": False},
            {"url": "/api/embed", "body": {"model": "m", "input": "x"}},
            {"url": "/v1/completions", "body": {"model": "m", "prompt": "x", "stream": True}},
        )
    )
    assert wire_body(generate)["stream"] is True
    assert "stream" not in wire_body(embed)
    assert wire_body(v1)["stream"] is False
    assert v1.body is not None and v1.body["stream"] is True  # the job itself is left alone


def test_a_null_in_the_body_counts_as_left_out() -> None:
    [job] = read(
        lines({"prompt": "a", "model": None, "options": None}),
        defaults=Defaults("m", options={"seed": 1}),
    )
    assert job.body == {"prompt": "a", "model": "m", "options": {"seed": 1}}


def test_each_job_gets_its_own_copy_of_the_default_options() -> None:
    first, second = read(
        lines({"prompt": "a"}, {"prompt": "b"}), defaults=Defaults("m", options={"seed": 1})
    )
    assert first.body is not None and second.body is not None
    assert first.body["options"] is not second.body["options"]


def test_a_byte_order_mark_before_the_first_line_is_ignored() -> None:
    [job] = read(b'\xef\xbb\xbf{"model": "m", "prompt": "a"}\n')
    assert job.error is None and job.body == {"model": "m", "prompt": "a"}

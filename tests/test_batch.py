"""ostream batch in-process against the fleet simulator: shapes, defaults, placement,
retries, resume (CONTRACT.md, "batch"). Signals, SIGKILL and shards: test_batch_process.py."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from ostream.batch.run import parse_parallel
from ostream.errors import UsageError
from ostream.fleet import Host
from ostream.testing import FakeOllama, Fleet, Sim
from tests.inproc import invoke
from tests.proc import closed_port

FAST = Sim(token_rate=20000, reply_tokens=(5, 10))
# Behaviour names (boom, stall...) keep their behaviour on a simulated server that lists them.
ODD = Sim(
    token_rate=20000,
    reply_tokens=(5, 10),
    models=("llama3.1", "busy-once", "boom", "stall", "error-mid"),
)


def lines(*objs: Any) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def batch(urls: list[str], *args: str, input: str = "") -> Result:
    return invoke(None, "batch", *args, input=input, env={"OSTREAM_HOSTS": ",".join(urls)})


def results(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout_bytes.splitlines()]


def prompts(n: int, model: str | None = None, prefix: str = "j") -> str:
    return lines(
        *(
            {"custom_id": f"{prefix}{i}", "prompt": f"p{i}", **({"model": model} if model else {})}
            for i in range(n)
        )
    )


def test_request_lines_of_every_url_come_back_in_openai_shape(fake_ollama: FakeOllama) -> None:
    jobs = [
        {
            "custom_id": "g",
            "method": "POST",
            "url": "/api/generate",
            "body": {"model": "llama3.1", "prompt": "Hi there"},
        },
        {
            "custom_id": "c",
            "url": "/api/chat",
            "body": {"model": "llama3.1", "messages": [{"role": "user", "content": "Hello you"}]},
        },
        {"custom_id": "e", "url": "/api/embed", "body": {"model": "llama3.1", "input": "x"}},
        {
            "custom_id": "v",
            "url": "/v1/chat/completions",
            "body": {"model": "llama3.1", "messages": [{"role": "user", "content": "Yo"}]},
        },
    ]
    result = batch([fake_ollama.url], input=lines(*jobs))
    assert result.exit_code == 0, result.stderr
    out = results(result)
    assert [r["custom_id"] for r in out] == ["g", "c", "e", "v"]
    assert all(r["error"] is None and r["response"]["status_code"] == 200 for r in out)
    assert all(r["host"] == fake_ollama.url and r["attempts"] == 1 for r in out)
    assert all(r["id"].startswith("batch_req_") for r in out)
    assert out[0]["response"]["body"]["response"] == "echo: Hi there"
    assert out[0]["response"]["body"]["done"] is True
    assert out[1]["response"]["body"]["message"]["content"] == "echo: Hello you"
    assert "embeddings" in out[2]["response"]["body"]
    assert out[3]["response"]["body"]["object"] == "chat.completion"
    streamed = {r.path: r.json.get("stream") for r in fake_ollama.requests if r.method == "POST"}
    assert streamed["/api/generate"] is True and streamed["/api/chat"] is True


def test_defaults_fill_what_a_body_leaves_out_and_the_body_wins(fake_ollama: FakeOllama) -> None:
    jobs = [{"prompt": "a"}, {"prompt": "b", "model": "llama3.1:latest", "options": {"seed": 1}}]
    result = batch(
        [fake_ollama.url],
        "-m",
        "llama3.1",
        "-s",
        "Be brief.",
        "-o",
        "temperature=0",
        "--keep-alive",
        "5m",
        "--think",
        "false",
        "--format",
        "json",
        input=lines(*jobs),
    )
    assert result.exit_code == 0, result.stderr
    sent = [r.json for r in fake_ollama.requests if r.path == "/api/generate"]
    first = next(b for b in sent if b["prompt"] == "a")
    second = next(b for b in sent if b["prompt"] == "b")
    assert first["model"] == "llama3.1" and first["system"] == "Be brief."
    assert first["options"] == {"temperature": 0} and first["keep_alive"] == "5m"
    assert first["think"] is False and first["format"] == "json"
    assert second["model"] == "llama3.1:latest" and second["options"] == {
        "temperature": 0,
        "seed": 1,
    }
    assert [r["custom_id"] for r in results(result)] == ["line-1", "line-2"]


def test_v1_jobs_get_the_defaults_that_map_to_openai_fields(fake_ollama: FakeOllama) -> None:
    def request(cid: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"custom_id": cid, "method": "POST", "url": url, "body": body}

    user = [{"role": "user", "content": "Hi"}]
    jobs = [
        request("chat", "/v1/chat/completions", {"messages": user}),
        request("own", "/v1/chat/completions", {
            "messages": [{"role": "developer", "content": "Mine."}, *user],
            "temperature": 1, "response_format": {"type": "text"},
        }),
        request("text", "/v1/completions", {"prompt": "Hi"}),
        request("embed", "/v1/embeddings", {"input": "Hi"}),
    ]  # fmt: skip
    options = ["-o", "temperature=0.2", "-o", "num_predict=5", "-o", 'stop=["x"]']
    result = batch(
        [fake_ollama.url],
        *["-m", "llama3.1", "-s", "Be brief.", *options, "-o", "num_ctx=99"],
        *["--format", "json", "--think", "high", "--keep-alive", "5m"],
        input=lines(*jobs),
    )
    assert result.exit_code == 0, result.stderr
    v1 = [r for r in fake_ollama.requests if r.path.startswith("/v1/")]
    sent = {r.path + str(r.json.get("temperature")): r.json for r in v1}
    chat = sent["/v1/chat/completions0.2"]
    assert chat == {
        "messages": [{"role": "system", "content": "Be brief."}, *user],
        "model": "llama3.1",
        "temperature": 0.2,
        "max_tokens": 5,
        "stop": ["x"],
        "response_format": {"type": "json_object"},
    }
    own = sent["/v1/chat/completions1"]  # the body wins; its developer message is the system
    assert own["messages"][0] == {"role": "developer", "content": "Mine."}
    assert own["response_format"] == {"type": "text"} and own["max_tokens"] == 5
    text = sent["/v1/completions0.2"]
    assert text == {"prompt": "Hi", "model": "llama3.1", "temperature": 0.2, "max_tokens": 5,
                    "stop": ["x"]}  # fmt: skip
    assert sent["/v1/embeddingsNone"] == {"input": "Hi", "model": "llama3.1"}


def test_text_lines_are_prompts(fake_ollama: FakeOllama) -> None:
    result = batch([fake_ollama.url], "--text", "-m", "llama3.1", input="one\n\ntwo\r\n")
    out = results(result)
    assert [r["custom_id"] for r in out] == ["line-1", "line-3"]
    assert [r["response"]["body"]["response"] for r in out] == ["echo: one", "echo: two"]


def test_bad_lines_and_unknown_models_fail_alone_and_the_batch_goes_on(fake_fleet: Any) -> None:
    fleet = fake_fleet(2, FAST)
    text = "not json\n[1]\n" + lines(
        {"custom_id": "a", "prompt": "x"},
        {"custom_id": "a", "prompt": "y"},
        {"custom_id": "u", "url": "/v2/nope", "body": {}},
        {"custom_id": "n", "prompt": "x", "model": "nowhere"},
        {"custom_id": "ok", "prompt": "z"},
    )
    result = batch(fleet.urls, "-m", "llama3.1", input=text)
    assert result.exit_code == 1
    out = results(result)
    assert [r["custom_id"] for r in out] == ["line-1", "line-2", "a", "a", "u", "n", "ok"]
    codes = [r["error"] and r["error"]["code"] for r in out]
    assert codes == ["invalid_request"] * 2 + [None] + ["invalid_request"] * 2 + [
        "model_not_found",
        None,
    ]
    missing = out[5]["error"]["message"]
    assert "nowhere" in missing and all(url in missing for url in fleet.urls)
    assert "5 failed" in result.stderr


def test_no_host_reachable_is_exit_3_and_nothing_runs() -> None:
    result = batch([f"http://127.0.0.1:{closed_port()}"], "-m", "llama3.1", input=prompts(2))
    assert result.exit_code == 3
    assert result.stdout_bytes == b""
    assert "cannot connect" in result.stderr


def test_a_host_that_cannot_be_reached_is_left_out(fake_ollama: FakeOllama) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    result = batch([dead, fake_ollama.url], "-m", "llama3.1", input=prompts(3))
    assert result.exit_code == 0
    assert {r["host"] for r in results(result)} == {fake_ollama.url}
    assert "left out of this run" in result.stderr


def test_quiet_keeps_the_line_saying_a_host_is_left_out(fake_ollama: FakeOllama) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    result = batch([dead, fake_ollama.url], "-m", "llama3.1", "-q", input=prompts(1))
    assert result.exit_code == 0
    assert "left out of this run" in result.stderr and dead.removeprefix("http://") in result.stderr
    assert "batch:" not in result.stderr  # -q silences the summary only


def test_no_host_reachable_creates_no_output_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    dead = f"http://127.0.0.1:{closed_port()}"
    result = batch([dead], "-m", "llama3.1", "--output", str(out), input=prompts(1))
    assert result.exit_code == 3
    assert not out.exists()
    out.write_bytes(b"")  # one that was there stays, as it was
    assert batch([dead], "-m", "llama3.1", "--output", str(out), input=prompts(1)).exit_code == 3
    assert out.read_bytes() == b""


def test_an_unreadable_input_creates_no_output_file(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    missing = str(tmp_path / "missing.jsonl")
    result = batch([fake_ollama.url], "-m", "llama3.1", "--output", str(out), missing)
    assert result.exit_code == 2
    assert not out.exists()


def test_two_models_on_four_hosts_never_swap(fake_fleet: Any) -> None:
    sims = [
        Sim(token_rate=20000, reply_tokens=(5, 10), models=("a", "b"), loaded=(m,), load_time=0.05)
        for m in ("a", "a", "b", "b")
    ]
    fleet: Fleet = fake_fleet(sims)
    jobs = lines(
        *({"custom_id": f"j{i}", "prompt": f"p{i}", "model": "ab"[i % 3 % 2]} for i in range(120))
    )
    result = batch(fleet.urls, input=jobs)
    assert result.exit_code == 0, result.stderr
    assert fleet.counters().swaps == 0 and fleet.counters().loads == 0
    by_host = {r["host"]: set() for r in results(result)}
    for r in results(result):
        by_host[r["host"]].add(r["response"]["body"]["model"])
    assert by_host == {
        fleet.urls[0]: {"a"},
        fleet.urls[1]: {"a"},
        fleet.urls[2]: {"b"},
        fleet.urls[3]: {"b"},
    }


def test_a_host_that_is_not_on_a_model_takes_the_one_nobody_is_on(fake_fleet: Any) -> None:
    sims = [Sim(token_rate=20000, reply_tokens=(5, 5), models=("a", "b"), loaded=("a",))] * 2
    fleet: Fleet = fake_fleet(sims)
    result = batch(fleet.urls, input=prompts(10, "a") + prompts(10, "b", prefix="k"))
    assert result.exit_code == 0, result.stderr
    assert {r["custom_id"] for r in results(result)} == {f"j{i}" for i in range(10)} | {
        f"k{i}" for i in range(10)
    }


def test_a_slow_host_does_fewer_jobs(fake_fleet: Any) -> None:
    fleet: Fleet = fake_fleet(
        [Sim(token_rate=4000, reply_tokens=(20, 20)), Sim(token_rate=400, reply_tokens=(20, 20))]
    )
    result = batch(fleet.urls, "-m", "llama3.1", input=prompts(40))
    assert result.exit_code == 0, result.stderr
    hosts = Counter(r["host"] for r in results(result))
    assert hosts[fleet.urls[0]] > hosts[fleet.urls[1]]


def test_parallel_slots_per_host(fake_fleet: Any) -> None:
    fleet: Fleet = fake_fleet(2, Sim(parallel=4, token_rate=100, reply_tokens=(20, 20)))
    result = batch(
        fleet.urls,
        "-m",
        "llama3.1",
        "--parallel",
        "3",
        "--parallel",
        f"{fleet.urls[1]}=1",
        input=prompts(16),
    )
    assert result.exit_code == 0, result.stderr

    def overlap(server: FakeOllama) -> int:
        # A request spans from its arrival to the moment its `done` line was handed to
        # the socket (`sent` is stamped before the write): the client can only have
        # read that line, and sent its next request, after it. `finished_at` comes
        # after that write, so a next request could arrive first and seem to overlap.
        spans = [
            (r.received_at, max(t for t, data in r.sent if b'"done":true' in data))
            for r in server.requests
            if r.path == "/api/generate"
        ]
        return max(sum(1 for a, b in spans if a <= start < b) for start, _ in spans)

    assert overlap(fleet[0]) == 3 and overlap(fleet[1]) == 1


def test_parse_parallel() -> None:
    hosts = [Host("http://a:11434"), Host("http://b:11434")]
    assert parse_parallel([], hosts) == {"http://a:11434": 1, "http://b:11434": 1}
    assert parse_parallel(["4", "b=2"], hosts) == {"http://a:11434": 4, "http://b:11434": 2}
    for bad in (["0"], ["x"], ["c=2"], ["a=-1"]):
        with pytest.raises(UsageError):
            parse_parallel(bad, hosts)


def test_a_dying_host_has_its_jobs_answered_elsewhere_once(fake_fleet: Any) -> None:
    fleet: Fleet = fake_fleet(3, Sim(token_rate=2000, reply_tokens=(10, 20)))
    fleet[0].die(after_requests=5)
    result = batch(fleet.urls, "-m", "llama3.1", input=prompts(60))
    assert result.exit_code == 0, result.stderr
    out = results(result)
    assert sorted(r["custom_id"] for r in out) == sorted(f"j{i}" for i in range(60))
    assert all(r["error"] is None for r in out)
    assert sum(r["host"] == fleet.urls[0] for r in out) <= 5
    assert any(r["attempts"] == 2 for r in out)


def test_a_busy_host_is_retried_after_its_retry_after(fake_fleet: Any) -> None:
    url = fake_fleet(1, ODD).urls[0]
    result = batch([url], input=prompts(1, "busy-once"))
    assert result.exit_code == 0, result.stderr
    assert results(result)[0]["attempts"] == 2


def test_retries_are_bounded_and_the_failure_keeps_the_answer(fake_fleet: Any) -> None:
    url = fake_fleet(1, ODD).urls[0]
    result = batch([url], "--retries", "1", input=prompts(1, "boom"))
    assert result.exit_code == 1
    (line,) = results(result)
    assert line["attempts"] == 2
    assert line["response"]["status_code"] == 500
    assert line["error"]["code"] == "server_error"
    assert "llama runner" in line["error"]["message"]


def test_a_stalled_stream_times_out_and_is_retried(fake_fleet: Any) -> None:
    url = fake_fleet(1, ODD).urls[0]
    job = {
        "custom_id": "s",
        "prompt": "x",
        "model": "stall",
        "options": {"fake_tokens_before": 1, "fake_stall": 30},
    }
    result = batch([url], "--timeout", "0.3", "--retries", "1", input=lines(job))
    assert result.exit_code == 1
    (line,) = results(result)
    assert (line["error"]["code"], line["attempts"]) == ("timeout", 2)


def test_a_mid_stream_error_is_not_retried(fake_fleet: Any) -> None:
    url = fake_fleet(1, ODD).urls[0]
    result = batch([url], input=prompts(1, "error-mid"))
    (line,) = results(result)
    assert (result.exit_code, line["attempts"], line["error"]["code"]) == (1, 1, "server_error")


def test_unordered_writes_every_job(fake_fleet: Any) -> None:
    fleet: Fleet = fake_fleet(2, FAST)
    result = batch(fleet.urls, "-m", "llama3.1", "--unordered", input=prompts(30))
    assert sorted(r["custom_id"] for r in results(result)) == sorted(f"j{i}" for i in range(30))


def test_output_appends_and_a_rerun_skips_the_successes(fake_fleet: Any, tmp_path: Path) -> None:
    url = fake_fleet(1, ODD).urls[0]
    out = tmp_path / "out.jsonl"
    first = batch(
        [url],
        "-m",
        "llama3.1",
        "--output",
        str(out),
        input=prompts(3) + lines({"custom_id": "bad", "prompt": "x", "model": "boom"}),
    )
    assert first.exit_code == 1 and first.stdout_bytes == b""
    second = batch(
        [url], "-m", "llama3.1", "--output", str(out), "--retries", "0", input=prompts(5)
    )
    assert second.exit_code == 0
    ids = [json.loads(line)["custom_id"] for line in out.read_bytes().splitlines()]
    assert sorted(ids) == ["bad", "j0", "j1", "j2", "j3", "j4"]
    assert "2 succeeded, 0 failed, 3 skipped" in second.stderr


def test_output_that_is_input_is_a_usage_error(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    path.write_text(prompts(1))
    result = batch([fake_ollama.url], "-m", "llama3.1", "--output", str(path), str(path))
    assert result.exit_code == 2
    assert "INPUT itself" in result.stderr


def test_an_unreadable_input_is_a_usage_error(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    result = batch([fake_ollama.url], str(tmp_path / "missing.jsonl"))
    assert result.exit_code == 2


def test_quiet_has_no_summary_and_no_live_display_off_a_terminal(fake_ollama: FakeOllama) -> None:
    loud = batch([fake_ollama.url], "-m", "llama3.1", input=prompts(2))
    assert loud.stderr.count("\n") == 1 and "batch: 2 succeeded" in loud.stderr
    quiet = batch([fake_ollama.url], "-m", "llama3.1", "-q", input=prompts(2))
    assert quiet.stderr == ""


def test_a_shard_runs_only_its_jobs(fake_ollama: FakeOllama) -> None:
    seen: list[str] = []
    for index in range(3):
        result = batch(
            [fake_ollama.url], "-m", "llama3.1", "--shard", f"{index}/3", input=prompts(30)
        )
        seen += [r["custom_id"] for r in results(result)]
    assert sorted(seen) == sorted(f"j{i}" for i in range(30))
    assert batch([fake_ollama.url], "--shard", "3/3", input=prompts(1)).exit_code == 2


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_full_disk_ends_the_batch_with_exit_1(fake_ollama: FakeOllama) -> None:
    result = batch([fake_ollama.url], "-m", "llama3.1", "--output", "/dev/full", input=prompts(3))
    assert result.exit_code == 1
    assert result.stderr == "ostream: error: /dev/full: No space left on device\n"


def test_jobs_whose_only_host_fails_end_failed_and_the_rest_go_on(fake_fleet: Any) -> None:
    fleet: Fleet = fake_fleet(
        [
            Sim(token_rate=20000, reply_tokens=(5, 5), models=("a", "b")),
            Sim(token_rate=20000, reply_tokens=(5, 5), models=("b",)),
        ]
    )
    fleet[0].die(after_requests=2)  # /api/tags and /api/ps, then nothing
    result = batch(fleet.urls, input=prompts(4, "a") + prompts(4, "b", prefix="k"))
    assert result.exit_code == 1
    out = {r["custom_id"]: r for r in results(result)}
    assert len(out) == 8
    assert all(out[f"k{i}"]["error"] is None for i in range(4))
    assert all(out[f"j{i}"]["error"]["code"] == "connection_failed" for i in range(4))


def test_hosts_loaded_with_a_model_the_run_does_not_need_all_take_part(fake_fleet: Any) -> None:
    sim = Sim(token_rate=2000, reply_tokens=(20, 20), models=("a", "b"), loaded=("a",))
    fleet: Fleet = fake_fleet([sim, sim, sim])
    result = batch(fleet.urls, input=prompts(30, "b"))
    assert result.exit_code == 0, result.stderr
    assert {r["host"] for r in results(result)} == set(fleet.urls)

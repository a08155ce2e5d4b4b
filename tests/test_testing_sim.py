"""ostream.testing's simulator: slots, the queue, loads and swaps, rates, faults, counters.

Timing is checked by order and lower bounds only (a loaded machine only makes things
slower); the rates are high so that the whole file stays fast.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from ostream.testing import BUSY_MESSAGE, FakeOllama, Fleet, Recorded, Sim
from tests.rawhttp import Raw, generate, lines_of, request


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def in_threads(*calls: Callable[[], Any], gap: Callable[[int], None] | None = None) -> list[Any]:
    """Run the calls at once (after `gap(i)` for the i-th); their results in order."""
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        results[i] = calls[i]()

    threads = []
    for i in range(len(calls)):
        if gap is not None:
            gap(i)
        threads.append(threading.Thread(target=run, args=(i,)))
        threads[-1].start()
    for thread in threads:
        thread.join(30)
    return results


def served(rec: Recorded) -> tuple[float, float]:
    """When the first byte went out and when the reply was complete."""
    assert rec.sent and rec.finished_at is not None
    return rec.sent[0][0], rec.finished_at


def done_line(body: bytes) -> dict[str, Any]:
    objs = lines_of(body)
    assert objs[-1]["done"] is True
    return objs[-1]


# --------------------------------------------------------------------------- slots and the queue


def test_parallel_slots_serve_that_many_at_once() -> None:
    tokens, rate = 20, 400.0  # 50 ms a reply
    with FakeOllama(sim=Sim(parallel=2, token_rate=rate, reply_tokens=(tokens, tokens))) as s:
        started = time.monotonic()
        results = in_threads(*[lambda i=i: generate(s.url, "llama3.1", f"p{i}") for i in range(4)])
        wall = time.monotonic() - started
        assert [r[0] for r in results] == [200] * 4
        spans = sorted(served(rec) for rec in s.wait_for_requests(4))
        # Never more than two replies at once: the third starts after one of the first two ends.
        assert spans[2][0] >= min(spans[0][1], spans[1][1])
        assert spans[3][0] >= max(min(spans[0][1], spans[1][1]), spans[2][0])
        assert wall >= 2 * tokens / rate
        counters = s.counters
        assert (counters.requests, counters.served, counters.tokens) == (4, 4, 4 * tokens)
        assert len(counters.busy) == 2
        assert all(busy >= 2 * (tokens - 1) / rate for busy in counters.busy)


def test_a_full_queue_answers_503_and_a_leaving_client_frees_its_slot() -> None:
    sim = Sim(parallel=1, max_queue=1, token_rate=20, reply_tokens=(200, 200))  # 10 s a reply
    with FakeOllama(sim=sim) as s:
        first = Raw(s.url, body={"model": "llama3.1", "prompt": "one"})
        try:
            assert first.head()[0] == 200  # has the slot
            second: list[Any] = []
            thread = threading.Thread(
                target=lambda: second.append(
                    generate(s.url, "llama3.1", "two", stream=False, options={"num_predict": 2})
                )
            )
            thread.start()
            wait_until(lambda: s.waiting == 1)
            status, _, body = generate(s.url, "llama3.1", "three")
            assert (status, json.loads(body)) == (503, {"error": BUSY_MESSAGE})
            assert s.counters.rejected == 1
        finally:
            first.close()  # the client leaves: its slot goes to the one waiting
        thread.join(30)
        assert second and second[0][0] == 200
        assert json.loads(second[0][2])["response"].startswith("echo: two")
        counters = s.counters
        assert (counters.requests, counters.served, counters.rejected) == (3, 1, 1)


def test_no_queue_serves_a_free_slot_and_refuses_what_would_wait() -> None:
    sim = Sim(max_queue=0, loaded=("llama3.1",), token_rate=20, reply_tokens=(200, 200))
    with FakeOllama(sim=sim) as s:
        first = Raw(s.url, body={"model": "llama3.1", "prompt": "one"})
        try:
            assert first.head()[0] == 200
            assert generate(s.url, "llama3.1", "two")[0] == 503
        finally:
            first.close()
        assert s.counters.rejected == 1


def test_a_client_leaving_the_queue_is_forgotten() -> None:
    with FakeOllama(sim=Sim(parallel=1, token_rate=20, reply_tokens=(200, 200))) as s:
        first = Raw(s.url, body={"model": "llama3.1", "prompt": "one"})
        first.head()
        queued = Raw(s.url, body={"model": "llama3.1", "prompt": "two"})
        try:
            wait_until(lambda: s.waiting == 1)
            queued.close()
            wait_until(lambda: s.waiting == 0)
        finally:
            first.close()
            queued.close()
        assert s.wait_for_requests(2)[1].left.wait(5)


# --------------------------------------------------------------------------- models


def test_load_time_and_swaps() -> None:
    load, unload = 0.2, 0.1
    sim = Sim(models=("a", "b"), load_time=load, unload_time=unload, reply_tokens=(5, 5))
    with FakeOllama(sim=sim) as s:
        assert json.loads(request(s.url, "GET", "/api/ps")[2]) == {"models": []}
        started = time.monotonic()
        first = done_line(generate(s.url, "a", "x")[2])
        assert time.monotonic() - started >= load
        assert first["load_duration"] >= load * 1e9
        assert done_line(generate(s.url, "a", "y")[2])["load_duration"] == 0  # loaded now
        assert (s.counters.loads, s.counters.swaps) == (1, 0)
        started = time.monotonic()
        assert generate(s.url, "b:latest", "z")[0] == 200
        assert time.monotonic() - started >= load + unload  # unload a, load b
        assert (s.counters.loads, s.counters.swaps) == (2, 1)
        ps = json.loads(request(s.url, "GET", "/api/ps")[2])["models"]
        assert [m["name"] for m in ps] == ["b:latest"]
        tags = json.loads(request(s.url, "GET", "/api/tags")[2])["models"]
        assert [m["name"] for m in tags] == ["a:latest", "b:latest"]


def test_a_swap_waits_for_the_runner_and_blocks_the_requests_behind_it() -> None:
    # a is loaded and busy; b needs a swap; then another a, which could have used a's free
    # second slot had the swap not blocked the scheduler (as in Ollama).
    sim = Sim(
        parallel=2,
        models=("a", "b"),
        loaded=("a",),
        load_time=0.05,
        token_rate=200,
        reply_tokens=(20, 20),  # 100 ms a reply
    )
    with FakeOllama(sim=sim) as s:
        prompts = [("a", "one"), ("b", "two"), ("a", "three")]

        def gap(i: int) -> None:
            if i:
                wait_until(lambda: len(s.requests) == i)
                if i == 2:
                    wait_until(lambda: s.waiting >= 1)

        results = in_threads(*[lambda m=m, p=p: generate(s.url, m, p) for m, p in prompts], gap=gap)
        assert [r[0] for r in results] == [200, 200, 200]
        one, two, three = (served(rec) for rec in s.wait_for_requests(3))
        assert one[1] <= two[0]  # b waited until a had finished
        assert two[1] <= three[0]  # the second a waited for b, then for a to come back
        assert (s.counters.loads, s.counters.swaps) == (2, 2)


def test_a_needless_swap_shows_in_the_counters_and_the_wall_time() -> None:
    load = 0.05
    sim = Sim(models=("a", "b"), load_time=load, reply_tokens=(2, 2))
    for order, swaps in (("aabb", 1), ("abab", 3)):
        with FakeOllama(sim=sim) as s:
            started = time.monotonic()
            for model in order:
                assert generate(s.url, model, "x")[0] == 200
            assert time.monotonic() - started >= (swaps + 1) * load
            assert (s.counters.loads, s.counters.swaps) == (swaps + 1, swaps)


def test_only_installed_models_answer_and_behaviours_still_work() -> None:
    with FakeOllama(sim=Sim(models=("llama3.1:8b",))) as s:
        status, _, body = generate(s.url, "llama3.1", "x")  # :latest is not installed
        assert (status, json.loads(body)) == (404, {"error": "model 'llama3.1' not found"})
        assert generate(s.url, "llama3.1:8b", "x")[0] == 200
        assert request(s.url, "POST", "/api/show", {"model": "other"})[0] == 404
        assert generate(s.url, "missing", "x")[0] == 404
        assert generate(s.url, "boom", "x")[0] == 500
        with pytest.raises(http.client.IncompleteRead):
            generate(s.url, "drop", "x")


# --------------------------------------------------------------------------- replies and rates


def test_reply_lengths_are_seeded_and_num_predict_cuts_them() -> None:
    sim = Sim(reply_tokens=(5, 50), seed=7)
    with FakeOllama(sim=sim) as one, FakeOllama(sim=sim) as two:
        prompts = [f"prompt {i}" for i in range(8)]
        first = [lines_of(generate(one.url, "llama3.1", p)[2]) for p in prompts]
        again = [lines_of(generate(two.url, "llama3.1", p)[2]) for p in prompts]
        text = ["".join(o["response"] for o in objs) for objs in first]
        assert text == ["".join(o["response"] for o in objs) for objs in again]
        counts = [objs[-1]["eval_count"] for objs in first]
        assert all(5 <= n <= 50 for n in counts) and len(set(counts)) > 1
        assert [len(objs) - 1 for objs in first] == counts  # one line per token
        assert all(t.startswith("echo: prompt") for t in text)
        cut = done_line(generate(one.url, "llama3.1", "p", options={"num_predict": 3})[2])
        assert (cut["eval_count"], cut["done_reason"]) == (3, "length")


def test_token_and_prompt_rates_and_slowing_down() -> None:
    tokens, rate = 30, 300.0
    sim = Sim(token_rate=rate, prompt_rate=1000.0, reply_tokens=(tokens, tokens))
    with FakeOllama(sim=sim) as s:
        prompt = " ".join(["word"] * 50)  # 50 prompt tokens: 50 ms
        started = time.monotonic()
        done = done_line(generate(s.url, "llama3.1", prompt)[2])
        assert time.monotonic() - started >= 0.05 + tokens / rate
        assert done["prompt_eval_count"] == 50
        assert done["prompt_eval_duration"] == pytest.approx(0.05e9, rel=0.01)
        assert done["eval_duration"] == pytest.approx(tokens / rate * 1e9, rel=0.01)
        rec = s.wait_for_request()
        assert rec.sent[-1][0] - rec.sent[0][0] >= (tokens - 2) / rate
        s.slow_down(3)
        started = time.monotonic()
        slow = done_line(generate(s.url, "llama3.1", "x")[2])
        assert time.monotonic() - started >= 3 * tokens / rate
        assert slow["eval_duration"] == pytest.approx(3 * tokens / rate * 1e9, rel=0.01)


def test_non_streamed_and_chat_and_embed() -> None:
    with FakeOllama(sim=Sim(reply_tokens=(4, 4))) as s:
        whole = json.loads(generate(s.url, "llama3.1", "a b c d e", stream=False)[2])
        assert (whole["response"], whole["eval_count"]) == ("echo: a b c", 4)
        messages = [{"role": "user", "content": "hi"}]
        chat = lines_of(
            request(s.url, "POST", "/api/chat", {"model": "llama3.1", "messages": messages})[2]
        )
        assert chat[0]["message"]["content"] == "echo:" and chat[-1]["eval_count"] == 4
        embed = json.loads(
            request(s.url, "POST", "/api/embed", {"model": "llama3.1", "input": ["a", "b"]})[2]
        )
        assert len(embed["embeddings"]) == 2
        assert s.counters.served == 3


# --------------------------------------------------------------------------- faults


def test_a_server_dying_mid_stream_resets_and_refuses() -> None:
    with FakeOllama(sim=Sim(token_rate=20, reply_tokens=(100, 100))) as s:
        raw = Raw(s.url, body={"model": "llama3.1", "prompt": "x"})
        try:
            raw.head()
            assert json.loads(raw.chunk() or b"")["response"] == "echo:"
            s.die()
            with pytest.raises(ConnectionResetError):
                raw.rest()
        finally:
            raw.close()
        with pytest.raises(ConnectionRefusedError):
            generate(s.url, "llama3.1", "again")
        assert s.counters.served == 0


def test_die_after_requests_and_at_a_moment() -> None:
    with FakeOllama(sim=Sim(reply_tokens=(3, 3))) as s:
        s.die(after_requests=2)
        assert generate(s.url, "llama3.1", "one")[0] == 200
        assert generate(s.url, "llama3.1", "two")[0] == 200
        with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
            generate(s.url, "llama3.1", "three")
        with pytest.raises(ConnectionRefusedError):
            generate(s.url, "llama3.1", "four")
    with FakeOllama() as plain:
        assert generate(plain.url, "m", "before")[0] == 200
        asked = time.monotonic()
        plain.die(at=0.1)

        def refused() -> bool:
            try:
                generate(plain.url, "m", "after")
            except ConnectionRefusedError:
                return True
            except (ConnectionResetError, http.client.RemoteDisconnected):
                pass  # died while answering this one
            return False

        wait_until(refused)
        assert time.monotonic() - asked >= 0.1


def test_refusing_for_a_while() -> None:
    with FakeOllama(sim=Sim(reply_tokens=(3, 3))) as s:
        s.refuse(0.2)
        status, _, body = generate(s.url, "llama3.1", "x")
        assert (status, json.loads(body)) == (503, {"error": BUSY_MESSAGE})
        time.sleep(0.3)
        assert generate(s.url, "llama3.1", "x")[0] == 200
        assert (s.counters.rejected, s.counters.served) == (1, 1)


def test_slow_down_needs_a_simulation() -> None:
    with FakeOllama() as plain, pytest.raises(ValueError):
        plain.slow_down(2)


# --------------------------------------------------------------------------- fleets


def test_a_fleet_and_its_counters() -> None:
    fast, slow = (
        Sim(token_rate=2000, reply_tokens=(20, 20)),
        Sim(token_rate=200, reply_tokens=(20, 20)),
    )
    with Fleet([fast, slow]) as fleet:
        assert len(fleet) == 2 and len(set(fleet.urls)) == 2
        started = time.monotonic()
        for server in fleet:  # round robin: the slow host's share sets the pace
            for _ in range(2):
                assert generate(server.url, "llama3.1", "x")[0] == 200
        assert time.monotonic() - started >= 2 * 20 / 200
        assert fleet[1].counters.busy[0] >= 2 * 19 / 200
        total = fleet.counters()
        assert (total.served, total.tokens, len(total.busy)) == (4, 80, 2)
    with Fleet(3, Sim(parallel=2)) as same:
        assert [len(s.counters.busy) for s in same] == [2, 2, 2]

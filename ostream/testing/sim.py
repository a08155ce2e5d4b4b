"""The simulated server: timing, models, reply lengths and faults on top of the scheduler.

Every simulated wait is a real sleep: keep the rates high and the times short in tests.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ostream.testing.behaviours import (
    BUSY_MESSAGE,
    ECHO_PREFIX,
    lines,
    options_of,
    whole_object,
)
from ostream.testing.events import CLOSED, DONE, JSON_CT, At, Event, Reply, Send
from ostream.testing.replies import error_reply, go_json, json_reply, metrics, tokenize
from ostream.testing.scheduler import Counters, Scheduler, Ticket

# The prose of a simulated reply (after the echo of the prompt), one sentence a line.
PROSE = "the sky is blue because air scatters short waves of sunlight more than long ones."
WORDS = tuple(PROSE.split(" "))


@dataclass
class Sim:
    """The knobs of one simulated server (the defaults keep a test fast).

    ``parallel`` slots per loaded model (``OLLAMA_NUM_PARALLEL``); ``max_queue``
    requests waiting at most, beyond that 503 (``OLLAMA_MAX_QUEUE``); ``token_rate``
    tokens/s per slot; ``prompt_rate`` prompt tokens/s; ``models`` installed
    (``/api/tags``), ``loaded`` at start (``/api/ps``), at most ``max_loaded`` at once
    (``OLLAMA_MAX_LOADED_MODELS``); ``load_time`` and ``unload_time`` in seconds;
    ``reply_tokens``: each reply's length is drawn uniformly from this range by a
    generator seeded with ``seed``, the model and the prompt (so a run is reproducible);
    ``options.num_predict`` caps it; ``size``: the bytes /api/tags and /api/ps report."""

    parallel: int = 1
    max_queue: int = 512
    token_rate: float = 2000.0
    prompt_rate: float = 20000.0
    models: tuple[str, ...] = ("llama3.1:latest",)
    loaded: tuple[str, ...] = ()
    max_loaded: int = 1
    load_time: float = 0.0
    unload_time: float = 0.0
    reply_tokens: tuple[int, int] = (20, 60)
    seed: int = 0
    size: int = 4_920_753_328


def full_name(model: str) -> str:
    """`llama3.1` -> `llama3.1:latest`, as Ollama names models."""
    return model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"


class Simulator:
    """One server's simulation: answers generation requests once the scheduler lets it."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.models = [full_name(m) for m in sim.models]
        self._slow = 1.0
        self._counters = Counters(busy=[0.0] * max(sim.parallel, 1))
        self.scheduler = Scheduler(
            parallel=sim.parallel,
            max_queue=sim.max_queue,
            max_loaded=sim.max_loaded,
            load_time=sim.load_time,
            unload_time=sim.unload_time,
            loaded=[full_name(m) for m in sim.loaded],
            counters=self._counters,
            delay=self._slowed,
        )

    # ---- faults and counters

    def _slowed(self, seconds: float) -> float:
        return seconds * self._slow

    def slow_down(self, factor: float) -> None:
        """Every time (tokens, prompt, load) becomes ``factor`` times longer, for the
        requests that start from now."""
        self._slow = factor

    def count_rejected(self) -> None:
        with self.scheduler.cond:
            self._counters.requests += 1
            self._counters.rejected += 1

    def counters(self) -> Counters:
        with self.scheduler.cond:
            return replace(self._counters, busy=list(self._counters.busy))

    def stop(self) -> None:
        self.scheduler.stop()

    # ---- answering

    def knows(self, model: str) -> bool:
        return full_name(model) in self.models

    def answer(
        self,
        kind: str,
        req: dict[str, Any],
        model: str,
        text: str,
        wait: Callable[[threading.Event], None],
    ) -> Reply:
        """The reply of a generation request (`kind`: generate, chat or embed) once it has
        a slot; `wait` blocks until the event is set, raising if the client leaves."""
        with self.scheduler.cond:
            self._counters.requests += 1
        ticket = self.scheduler.submit(full_name(model))
        if ticket is None:
            return error_reply(503, BUSY_MESSAGE)
        try:
            wait(ticket.ready)
        except BaseException:
            self.scheduler.release(ticket)
            raise
        reply, tokens, prompt_tokens = self._timed(kind, req, model, text, ticket)

        def end(outcome: str) -> None:
            with self.scheduler.cond:
                if outcome in (DONE, CLOSED):
                    self._counters.served += 1
                    self._counters.tokens += tokens
                    self._counters.prompt_tokens += prompt_tokens
            self.scheduler.release(ticket)

        reply.on_end = end
        return reply

    def reply_length(self, model: str, text: str, opts: dict[str, Any]) -> tuple[int, bool]:
        """How many tokens the reply has, and whether `num_predict` cut it."""
        rng = random.Random(f"{self.sim.seed}\0{full_name(model)}\0{text}")
        low, high = self.sim.reply_tokens
        n = rng.randint(min(low, high), max(low, high))
        cap = opts.get("num_predict")
        if isinstance(cap, int) and 0 <= cap < n:
            return cap, True
        return n, False

    def reply_tokens(self, model: str, text: str, n: int) -> list[str]:
        """The echo of the prompt, then the same sentence over and over, one a line."""
        rng = random.Random(f"{self.sim.seed}\0{full_name(model)}\0{text}\0words")
        tokens = tokenize(ECHO_PREFIX + text)[:n]
        i = rng.randrange(len(WORDS))
        while len(tokens) < n:
            word = WORDS[i % len(WORDS)]
            start = i % len(WORDS) == 0
            tokens.append(f"\n{word.capitalize()}" if start else f" {word}")
            i += 1
        return tokens

    def _timed(
        self, kind: str, req: dict[str, Any], model: str, text: str, t: Ticket
    ) -> tuple[Reply, int, int]:
        """The reply, paced from the moment it starts; its token and prompt token counts."""
        opts = options_of(req)
        prompt_tokens = max(len(tokenize(text)), 1)
        slow = self._slow
        prompt_time = prompt_tokens / self.sim.prompt_rate * slow
        if kind == "embed":
            inputs = req.get("input")
            count = len(inputs) if isinstance(inputs, list) else 1
            obj = {
                "model": model,
                "embeddings": [[0.1, 0.2, 0.3] for _ in range(count)],
                "total_duration": int((t.load_duration + prompt_time) * 1e9),
                "load_duration": int(t.load_duration * 1e9),
                "prompt_eval_count": prompt_tokens,
            }
            reply = json_reply(obj)
            reply.events.insert(0, At(prompt_time))
            return reply, 0, prompt_tokens
        n, cut = self.reply_length(model, text, opts)
        tokens = self.reply_tokens(model, text, n)
        per_token = 1 / self.sim.token_rate * slow
        stats: dict[str, Any] = metrics(
            n,
            prompt_eval_count=prompt_tokens,
            load_duration=t.load_duration,
            prompt_eval_duration=prompt_time,
            eval_duration=n * per_token,
        )
        if cut:
            stats["done_reason"] = "length"
        if req.get("stream", True) is False:
            body = go_json(whole_object(kind, model, "".join(tokens), n, done_extra=stats))
            events: list[Event] = [At(prompt_time + n * per_token), Send(body)]
            return Reply(content_type=JSON_CT, events=events, content_length=True), n, prompt_tokens
        events = []
        for i, line in enumerate(lines(kind, model, tokens, done_extra=stats)):
            events += [At(prompt_time + min(i + 1, n) * per_token), Send(line)]
        return Reply(events=events), n, prompt_tokens

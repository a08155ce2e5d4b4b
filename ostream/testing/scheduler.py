"""One simulated server's scheduler: runners with slots, a bounded queue, loads and swaps.

Modelled on Ollama's server/sched.go: requests wait in one FIFO; the scheduler takes
them one at a time. A request for a loaded model goes to that model's runner, whose
``parallel`` slots (``OLLAMA_NUM_PARALLEL``) serve it in turn. A request for a model
that is not loaded blocks the scheduler, and so every request behind it, while the
model loads; when ``max_loaded`` models (``OLLAMA_MAX_LOADED_MODELS``) are loaded
already, the scheduler first waits for one runner (an idle one if any, else the least
recently used) to finish all its requests, and unloads it: a swap.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial


@dataclass
class Counters:
    """What a simulated server did, for a test to read (a snapshot).

    ``requests``: generation requests received; ``served``: answered to the end;
    ``tokens`` and ``prompt_tokens`` of the served ones; ``loads`` and ``swaps``
    (unloads to make room); ``rejected``: 503 answers (queue full, or refusing);
    ``busy``: seconds each slot spent serving, slot by slot."""

    requests: int = 0
    served: int = 0
    tokens: int = 0
    prompt_tokens: int = 0
    loads: int = 0
    swaps: int = 0
    rejected: int = 0
    busy: list[float] = field(default_factory=list)


@dataclass(eq=False)
class Ticket:
    """One request's place: queued, then on a runner, then holding a slot."""

    model: str
    ready: threading.Event = field(default_factory=threading.Event)
    runner: Runner | None = None
    slot: int | None = None
    granted_at: float = 0.0
    load_duration: float = 0.0
    cancelled: bool = False


@dataclass(eq=False)
class Runner:
    """A loaded model: its free slots, the requests waiting for one, how many it holds."""

    model: str
    free: list[int]
    loaded_at: float = field(default_factory=time.monotonic)
    waiting: deque[Ticket] = field(default_factory=deque)
    refs: int = 0
    last_used: float = field(default_factory=time.monotonic)


class Scheduler:
    """The scheduler of one simulated server. ``delay()`` scales load and unload times."""

    def __init__(
        self,
        *,
        parallel: int,
        max_queue: int,
        max_loaded: int,
        load_time: float,
        unload_time: float,
        loaded: list[str],
        counters: Counters,
        delay: Callable[[float], float],
    ) -> None:
        self.parallel = max(parallel, 1)
        self.max_queue = max_queue
        self.max_loaded = max(max_loaded, 1)
        self.load_time = load_time
        self.unload_time = unload_time
        self.counters = counters
        self._delay = delay
        self.cond = threading.Condition()  # guards the queue, the runners and the counters
        self._pending: deque[Ticket] = deque()
        self._runners: dict[str, Runner] = {m: self._runner(m) for m in loaded}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fake-ollama-sched", daemon=True)
        self._thread.start()

    def _runner(self, model: str) -> Runner:
        return Runner(model, free=list(range(self.parallel - 1, -1, -1)))

    def stop(self) -> None:
        self._stop.set()
        with self.cond:
            self.cond.notify_all()
        self._thread.join(2)

    def loaded(self) -> list[Runner]:
        with self.cond:
            return list(self._runners.values())

    def _waiting(self) -> int:
        pending = sum(not t.cancelled for t in self._pending)
        return pending + sum(len(r.waiting) for r in self._runners.values())

    def waiting(self) -> int:
        """How many requests wait for a slot now (queued, loading or on a busy runner)."""
        with self.cond:
            return self._waiting()

    def submit(self, model: str) -> Ticket | None:
        """Queue a request; None when the queue is full (the server answers 503)."""
        with self.cond:
            runner = self._runners.get(model)
            starts_now = (
                runner is not None
                and not any(not t.cancelled for t in self._pending)
                and len(runner.free) > len(runner.waiting)
            )
            if not starts_now and self._waiting() >= self.max_queue:
                self.counters.rejected += 1
                return None
            ticket = Ticket(model)
            self._pending.append(ticket)
            self.cond.notify_all()
            return ticket

    def release(self, ticket: Ticket) -> None:
        """The request ended (or its client left): free its slot or its place."""
        with self.cond:
            if ticket.cancelled:
                return
            ticket.cancelled = True
            runner = ticket.runner
            if runner is None:
                return  # still pending: the loop drops it
            if ticket.slot is None:
                runner.waiting.remove(ticket)
            else:
                self.counters.busy[ticket.slot] += time.monotonic() - ticket.granted_at
                runner.free.append(ticket.slot)
            runner.refs -= 1
            runner.last_used = time.monotonic()
            self._dispatch(runner)
            self.cond.notify_all()

    def _dispatch(self, runner: Runner) -> None:
        while runner.free and runner.waiting:
            ticket = runner.waiting.popleft()
            ticket.slot = runner.free.pop()
            ticket.granted_at = time.monotonic()
            ticket.ready.set()

    def _victim(self) -> Runner:
        runners = sorted(self._runners.values(), key=lambda r: r.last_used)
        idle = [r for r in runners if r.refs == 0]
        return (idle or runners)[0]

    def _idle_or_stopped(self, runner: Runner) -> bool:
        return self._stop.is_set() or runner.refs == 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self.cond:
                self.cond.wait_for(lambda: self._stop.is_set() or bool(self._pending))
                if self._stop.is_set():
                    return
                ticket = self._pending[0]
                if ticket.cancelled:
                    self._pending.popleft()
                    continue
                runner = self._runners.get(ticket.model)
                if runner is not None:
                    self._pending.popleft()
                    ticket.runner = runner
                    runner.refs += 1
                    runner.waiting.append(ticket)
                    self._dispatch(runner)
                    continue
                victim = None
                if len(self._runners) >= self.max_loaded:
                    victim = self._victim()
                    self.cond.wait_for(partial(self._idle_or_stopped, victim))
            # Outside the lock: the time a load or an unload takes blocks only this loop.
            if victim is None:
                seconds = self._delay(self.load_time)
                if self._stop.wait(seconds):
                    return
                with self.cond:
                    self._runners[ticket.model] = self._runner(ticket.model)
                    ticket.load_duration = seconds
                    self.counters.loads += 1
            else:
                if self._stop.wait(self._delay(self.unload_time)):
                    return
                with self.cond:
                    del self._runners[victim.model]
                    self.counters.swaps += 1

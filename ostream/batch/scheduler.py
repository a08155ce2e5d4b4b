"""Jobs over hosts: pull-based dispatch, model-aware placement, retries, set-aside hosts.

Every host has `slots` threads. A free slot takes the next job it may run
(`_pick`), so a faster host does more. Placement, in this order:

1. the earliest job for a model its host is on (loaded at start per /api/ps, or
   the model it ran last);
2. on a host with nothing loaded, the model with the most jobs waiting per slot
   already on it (loading into an empty server is not a swap);
3. when no job waits for the models it is on: a job for a model that no working
   host is on, else for one with more than SWITCH_BACKLOG jobs waiting per slot on
   it (a host only loaded with models this run has not asked for counts as empty).

So a host changes model only where the input asks for it (a tail of a few jobs
for another model is left to the hosts on it); the lookahead is the reorder
window. A job is sent only to a host that has its model (/api/tags); a
model that no host has fails its jobs at once (`model_not_found`).

Failure: a refused or broken connection, a 429/503/5xx, a stream that broke or
stalled is retried (at most `retries` more attempts, backoff doubling from
`backoff` seconds, a Retry-After honoured, another host preferred). A host
refused or failing three times in a row is set aside (1 s, doubling to 30 s) and
then tried again, unless it is the last working host. Every job's result is
handed to `emit` exactly once, under the scheduler's lock.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ostream.batch.jobs import CHAT, GENERATE, Job, wire_body
from ostream.batch.results import Assembler, failure_line, success_line
from ostream.client import Client, Response
from ostream.errors import ExitCode, Failure, classify
from ostream.fleet import Host

ASIDE_AFTER = 3  # failures in a row that set a host aside
ASIDE_FIRST = 1.0
ASIDE_MAX = 30.0
MAX_BACKOFF = 8.0
SWITCH_BACKLOG = 32  # jobs waiting per slot on a model that make a host worth swapping to it
ANSWER_LIMIT = 256 << 20  # an embedding answer of many inputs is still far below
LEAVE = 5.0  # how long an interrupted run waits for its slots to let go
# Failures worth another attempt: a refused or broken connection, a stream that broke
# or stalled (an HTTP 429/503/5xx is judged by its status).
RETRY_CODES = (
    ExitCode.CONNECT,
    ExitCode.PROTOCOL,
    ExitCode.TIMEOUT,
)  # how long an interrupted run waits for its slots to let go


def model_key(name: str) -> str:
    """A model name as /api/tags lists it: `llama3.1` is `llama3.1:latest`."""
    return name if ":" in name.rpartition("/")[2] else name + ":latest"


@dataclass(eq=False)
class HostState:
    """One host as the scheduler sees it."""

    host: Host
    slots: int
    models: frozenset[str]  # model_key names from /api/tags
    loaded: set[str] = field(default_factory=set)  # the models it is on
    ran: bool = False  # whether it took a job in this run
    in_flight: int = 0
    done: int = 0
    failed: int = 0  # attempts that failed here
    in_a_row: int = 0
    aside_until: float = 0.0
    aside_for: float = 0.0
    busy_until: float = 0.0  # a 503/429 asked to wait
    last_failure: Failure | None = None

    def usable(self, now: float) -> bool:
        return now >= self.aside_until


@dataclass(eq=False)
class Task:
    job: Job
    ticket: int
    model: str  # model_key
    attempts: int = 0
    not_before: float = 0.0
    avoid: str | None = None  # the host it last failed on

    def __lt__(self, other: Task) -> bool:
        return self.ticket < other.ticket


@dataclass
class Outcome:
    """One attempt's result: `body` on success, else `failure` (and what the server said)."""

    body: Any = None
    failure: Failure | None = None
    status: int | None = None
    answer: Any = None  # the error answer's body (JSON when it was)
    retry: bool = False
    retry_after: float = 0.0
    refused: bool = False
    busy: bool = False


Emit = Callable[[int, bytes], None]


class Scheduler:
    """Runs tasks over hosts; `emit(ticket, line)` is called once per task, under `lock`."""

    def __init__(
        self,
        hosts: Iterable[HostState],
        client: Callable[[Host], Client],
        emit: Emit,
        *,
        retries: int = 2,
        backoff: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hosts = list(hosts)
        self._client = client
        self._emit = emit
        self.retries = retries
        self.backoff = backoff
        self._clock = clock
        self.lock = threading.Condition()
        self._pending: dict[str, list[Task]] = {}  # by model, in ticket order
        self._delayed: list[Task] = []  # waiting for their backoff
        self._open: set[Response] = set()
        self._threads: list[threading.Thread] = []
        self.outstanding = 0  # tasks added and not yet emitted
        self.stopping = False
        self.fatal: BaseException | None = None
        self.succeeded = 0
        self.failed = 0
        self.tokens = 0
        self.started = clock()

    # -- the dispatching side (one thread: the caller's) --------------------------

    def start(self) -> None:
        for index, state in enumerate(self.hosts):
            for slot in range(state.slots):
                thread = threading.Thread(
                    target=self._slot,
                    args=(state,),
                    name=f"ostream-batch-{index}.{slot}",
                    daemon=True,  # a slot stuck connecting must not hold the exit
                )
                self._threads.append(thread)
                thread.start()

    def known(self, model: str) -> bool:
        key = model_key(model)
        return any(key in state.models for state in self.hosts)

    def add(self, job: Job, ticket: int) -> None:
        """Queue a runnable job (its model is known: see `known`). Under `lock`."""
        assert job.model is not None
        task = Task(job, ticket, model_key(job.model))
        self._pending.setdefault(task.model, []).append(task)
        self.outstanding += 1
        self.lock.notify_all()

    def wait(self, timeout: float) -> None:
        """Under `lock`: sleep until something changes (or `timeout`), then fail the
        jobs that no working host can take. Raises what stopped a slot (a write error)."""
        self.lock.wait(timeout)
        if self.fatal is not None:
            raise self.fatal
        self._fail_orphans(self._clock())

    def stop(self) -> None:
        """Close every request in flight at once; the slots end without writing."""
        with self.lock:
            self.stopping = True
            for response in self._open:
                response.abort()
            self.lock.notify_all()

    def join(self, timeout: float = LEAVE) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- the slots ----------------------------------------------------------------

    def _slot(self, state: HostState) -> None:
        client = self._client(state.host)
        try:
            while True:
                with self.lock:
                    task = self._next(state)
                    if task is None:
                        return
                outcome = self._attempt(client, task)
                with self.lock:
                    state.in_flight -= 1
                    if self.stopping:
                        return
                    try:
                        self._settle(state, task, outcome)
                    except BaseException as exc:  # a write that failed: the run ends
                        self.fatal = exc
                        self.stopping = True
                        for response in self._open:
                            response.abort()
                    self.lock.notify_all()
        finally:
            client.close()

    def _next(self, state: HostState) -> Task | None:
        """Under `lock`: wait for a task this slot may run; None when the run is over."""
        while not self.stopping:
            now = self._clock()
            self._release(now)
            if state.usable(now) and now >= state.busy_until:
                task = self._pick(state)
                if task is not None:
                    state.in_flight += 1
                    task.attempts += 1
                    return task
            if self.outstanding == 0 and self.closed:
                return None
            self.lock.wait(self._nap(state, now))
        return None

    closed = False  # set (under lock) when no more tasks will be added

    def _nap(self, state: HostState, now: float) -> float:
        wake = [t.not_before for t in self._delayed]
        wake += [state.aside_until, state.busy_until]
        later = [w - now for w in wake if w > now]
        return min([0.5, *later])

    def _release(self, now: float) -> None:
        if not self._delayed:
            return
        due = [t for t in self._delayed if t.not_before <= now]
        if due:
            self._delayed = [t for t in self._delayed if t.not_before > now]
            for task in due:
                bisect.insort(self._pending.setdefault(task.model, []), task)

    def _pick(self, state: HostState) -> Task | None:
        now = self._clock()
        waiting = {m: q for m, q in self._pending.items() if q and m in state.models}
        if not waiting:
            return None
        mine = [m for m in waiting if m in state.loaded]
        if not mine and (not state.loaded or not state.ran):
            # Nothing loaded, or only models this run has not asked for: no swap to avoid.
            mine = [max(waiting, key=lambda m: (self._per_slot(m, now), -waiting[m][0].ticket))]
        elif not mine:
            mine = [m for m in waiting if not self._on(m, now)] or [
                m for m in waiting if self._per_slot(m, now) >= SWITCH_BACKLOG
            ]
        for model in sorted(mine, key=lambda m: waiting[m][0].ticket):
            queue = waiting[model]
            for index, task in enumerate(queue[:8]):
                if task.avoid == state.host.url and self._elsewhere(task, state, now):
                    continue
                del queue[index]
                state.ran = True
                if model not in state.loaded:
                    state.loaded.clear()
                    state.loaded.add(model)
                return task
        return None

    def _on(self, model: str, now: float) -> bool:
        """Whether a working host is on `model`."""
        return any(model in s.loaded and s.usable(now) for s in self.hosts)

    def _per_slot(self, model: str, now: float) -> float:
        """The jobs waiting for `model` per slot on it, counting the asking host's one."""
        slots = sum(s.slots for s in self.hosts if model in s.loaded and s.usable(now))
        return len(self._pending[model]) / (1 + slots)

    def _elsewhere(self, task: Task, state: HostState, now: float) -> bool:
        """Whether another working host could take `task`."""
        return any(s is not state and task.model in s.models and s.usable(now) for s in self.hosts)

    def _attempt(self, client: Client, task: Task) -> Outcome:
        """Send the job once and read its whole answer (the lock is not held)."""
        from ostream.ndjson import compact, json_object
        from ostream.status import error_for_status

        job = task.job
        assert job.url is not None
        try:
            response = client.open("POST", job.url, compact(wire_body(job)))
        except Exception as exc:
            failure = classify(exc)
            refused = failure.code == ExitCode.CONNECT
            return Outcome(failure=failure, retry=failure.code in RETRY_CODES, refused=refused)
        with self.lock:
            self._open.add(response)
            if self.stopping:
                response.abort()
        try:
            if response.status >= 300:
                raw = response.read_all()
                error = classify(error_for_status(response, raw, model=job.model))
                answer = json_object(raw)
                busy = response.status in (429, 503)
                return Outcome(
                    failure=error,
                    status=response.status,
                    answer=answer if answer is not None else raw.decode("utf-8", "replace"),
                    retry=busy or response.status >= 500,
                    retry_after=response.retry_after,
                    busy=busy,
                )
            if job.url in (GENERATE, CHAT):
                assembler = Assembler("generate" if job.url == GENERATE else "chat")
                return Outcome(body=assembler.run(response.chunks()))
            raw = response.read_all(ANSWER_LIMIT)
            body = json_object(raw)
            if body is None:
                from ostream.errors import ProtocolError
                from ostream.ndjson import excerpt

                raise ProtocolError(f"{response.url} answered with no JSON object: {excerpt(raw)}")
            return Outcome(body=body)
        except Exception as exc:
            failure = classify(exc)
            return Outcome(failure=failure, retry=failure.code in RETRY_CODES)
        finally:
            with self.lock:
                self._open.discard(response)
            response.close()

    def _settle(self, state: HostState, task: Task, outcome: Outcome) -> None:
        """Under `lock`: write the task's line, or queue it again for a retry."""
        now = self._clock()
        host = state.host.url
        if outcome.failure is None:
            state.done += 1
            state.in_a_row = 0
            state.aside_for = 0.0
            self.succeeded += 1
            body = outcome.body
            if isinstance(body, dict) and isinstance(body.get("eval_count"), int):
                self.tokens += body["eval_count"]
            line = success_line(task.job.custom_id, 200, body, host=host, attempts=task.attempts)
            self._finish(task, line)
            return
        state.failed += 1
        state.last_failure = outcome.failure
        if outcome.busy:
            state.busy_until = now + outcome.retry_after
        elif outcome.retry:
            state.in_a_row += 1
            if outcome.refused or state.in_a_row >= ASIDE_AFTER:
                self._set_aside(state, now)
        if outcome.retry and task.attempts <= self.retries:
            wait = self.backoff * 2 ** (task.attempts - 1)
            task.not_before = now + min(max(wait, outcome.retry_after), MAX_BACKOFF)
            task.avoid = host
            self._delayed.append(task)
            return
        failure = outcome.failure
        line = failure_line(
            task.job.custom_id,
            failure.kind,
            failure.message or failure.kind,
            status_code=outcome.status,
            body=outcome.answer,
            host=host,
            attempts=task.attempts,
        )
        self.failed += 1
        self._finish(task, line)

    def _set_aside(self, state: HostState, now: float) -> None:
        others = [s for s in self.hosts if s is not state and s.usable(now)]
        if not others:
            return  # the last working host: its jobs retry with backoff instead
        state.aside_for = min(state.aside_for * 2 or ASIDE_FIRST, ASIDE_MAX)
        state.aside_until = now + state.aside_for
        state.in_a_row = ASIDE_AFTER - 1  # one more failure after the probe: aside again

    def _finish(self, task: Task, line: bytes) -> None:
        self.outstanding -= 1
        self._emit(task.ticket, line)

    def _fail_orphans(self, now: float) -> None:
        """Fail the waiting jobs whose model only set-aside hosts have."""
        for model, queue in self._pending.items():
            if not queue:
                continue
            holders = [s for s in self.hosts if model in s.models]
            if any(s.usable(now) or s.in_flight for s in holders):
                continue
            reasons = "; ".join(
                f"{s.host.label}: {s.last_failure.message}"
                for s in holders
                if s.last_failure is not None
            )
            while queue:
                task = queue.pop(0)
                self.failed += 1
                self._finish(
                    task,
                    failure_line(
                        task.job.custom_id,
                        ExitCode.CONNECT.kind,
                        f"every host with {model} is failing: {reasons}",
                        attempts=task.attempts,
                    ),
                )


def not_found_line(job: Job, hosts: Iterable[Host]) -> bytes:
    """The line of a job whose model no host has."""
    names = ", ".join(h.url for h in hosts)
    return failure_line(
        job.custom_id,
        ExitCode.MODEL_NOT_FOUND.kind,
        f"model '{job.model}' is on none of the hosts asked: {names}",
    )

"""Pull one model onto every host at once (POST /api/pull), and show it happening.

Each host is pulled in a thread of its own; the status lines come back to the
calling thread through a queue, so everything shown is written by one thread.
Whatever ends the run (the last host done, Ctrl-C, a closed stdout), every
connection still open is shut down: that is what makes a server stop pulling.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ostream.client import Response
from ostream.errors import Failure, ProtocolError, ServerError, classify
from ostream.fleet import Connection, Host
from ostream.ndjson import LineFramer, compact, error_text, parse_block
from ostream.status import error_for_status

PULLED = "success"  # the status of Ollama's last line when the model is in place
LEAVE = 5.0  # how long a worker may take to notice its connection was shut down


@dataclass(frozen=True)
class Status:
    """One status line a host sent: {"status": ..., "digest": ..., "total": ..., ...}."""

    host: Host
    obj: dict[str, Any]


@dataclass(frozen=True)
class Pulled:
    """A host is done: `failure` None when it has the model."""

    host: Host
    failure: Failure | None = None


@dataclass
class _Pulls:
    """The open responses, so that the caller's thread can shut them all down."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    open: set[Response] = field(default_factory=set)
    cancelled: bool = False

    def add(self, response: Response) -> None:
        with self.lock:
            self.open.add(response)
            if self.cancelled:
                response.abort()

    def discard(self, response: Response) -> None:
        with self.lock:
            self.open.discard(response)

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            for response in self.open:
                response.abort()


def pull(
    hosts: Sequence[Host],
    connection: Connection,
    model: str,
    on_status: Callable[[Status], None],
    on_done: Callable[[Pulled], None],
) -> list[Pulled]:
    """Pull `model` on every host at once; call `on_status` for each status line and
    `on_done` as each host finishes, in this thread. The results in host order."""
    events: queue.Queue[Status | Pulled] = queue.Queue()
    pulls = _Pulls()
    body = compact({"model": model, "stream": True})
    workers = [
        threading.Thread(
            target=_pull_one,
            args=(host, connection, body, events, pulls),
            name=f"ostream-pull-{i}",
            daemon=True,  # a worker stuck connecting must not hold the exit
        )
        for i, host in enumerate(hosts)
    ]
    results: dict[Host, Pulled] = {}
    try:
        for worker in workers:
            worker.start()
        while len(results) < len(hosts):
            event = events.get()
            if isinstance(event, Status):
                on_status(event)
            else:
                results[event.host] = event
                on_done(event)
    finally:
        pulls.cancel()
        for worker in workers:
            if worker.is_alive():
                worker.join(LEAVE)
    return [results[host] for host in hosts]


def _pull_one(
    host: Host,
    connection: Connection,
    body: bytes,
    events: queue.Queue[Status | Pulled],
    pulls: _Pulls,
) -> None:
    client = connection.client(host)
    try:
        with client.open("POST", "/api/pull", body) as response:
            pulls.add(response)
            try:
                _read_statuses(host, response, events)
            finally:
                pulls.discard(response)
    except Exception as exc:  # this host's failure, not the run's
        events.put(Pulled(host, classify(exc)))
    else:
        events.put(Pulled(host))
    finally:
        client.close()


def _read_statuses(host: Host, response: Response, events: queue.Queue[Status | Pulled]) -> None:
    if response.status >= 300:
        raise error_for_status(response, response.read_all(), model=None)
    framer = LineFramer()
    last = ""
    for chunk in response.chunks():
        block = framer.feed(chunk)
        if block is not None:
            last = _report(host, block, events, last)
    last = _report(host, framer.rest(), events, last)
    if last != PULLED:
        raise ProtocolError(f'the pull from {host.url} ended before "{PULLED}"')


def _report(host: Host, block: bytes, events: queue.Queue[Status | Pulled], last: str) -> str:
    """Hand on the status lines of `block`; the last status, or the error they report."""
    objs, bad = parse_block(block)
    for obj in objs:
        events.put(Status(host, obj))
        if "error" in obj:
            raise ServerError(error_text(obj["error"]))
        last = str(obj.get("status", last))
    if bad is not None:
        raise bad
    return last


def stderr_console(stderr: Any, *, color: bool) -> tuple[Any, io.TextIOWrapper]:
    """A rich Console on the binary `stderr` (a terminal), and the text layer under it:
    `detach()` that afterwards, so stderr stays open."""
    from rich.console import Console

    text = io.TextIOWrapper(stderr, encoding="utf-8", errors="replace", write_through=True)
    console = Console(
        file=text,
        force_terminal=True,
        color_system="standard" if color else None,
        highlight=False,
    )
    return console, text


class Bars:
    """A rich progress bar per host on a terminal: bytes, rate, time left, the layer.

    rich is imported here only: no other command pays for it.
    """

    def __init__(self, hosts: Sequence[Host], stderr: Any, *, color: bool) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.text import Text

        class Bytes(DownloadColumn):
            def render(self, task: Any) -> Text:
                return Text("") if task.fields.get("blank") else super().render(task)

        console, self._text = stderr_console(stderr, color=color)
        self.progress = Progress(
            TextColumn("{task.fields[host]}"),
            BarColumn(bar_width=20),
            Bytes(binary_units=False),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.description}", markup=False),
            console=console,
            refresh_per_second=8,
            transient=False,
        )
        self._tasks = {
            host: self.progress.add_task("waiting", total=None, host=host.label, blank=False)
            for host in hosts
        }
        self._layers: dict[Host, dict[str, tuple[int, int]]] = {host: {} for host in hosts}

    def __enter__(self) -> Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.progress.stop()
        finally:
            self._text.detach()  # stderr stays open for what follows

    def status(self, event: Status) -> None:
        obj, layers = event.obj, self._layers[event.host]
        digest, total = obj.get("digest"), obj.get("total")
        if isinstance(digest, str) and isinstance(total, int):
            completed = obj.get("completed")
            layers[digest] = (total, completed if isinstance(completed, int) else 0)
        text = obj.get("status") or (f"error: {error_text(obj['error'])}" if "error" in obj else "")
        self.progress.update(
            self._tasks[event.host],
            description=str(text),
            total=sum(t for t, _ in layers.values()) or None,
            completed=sum(c for _, c in layers.values()),
        )

    def done(self, event: Pulled) -> None:
        task, layers = self._tasks[event.host], self._layers[event.host].values()
        total = sum(t for t, _ in layers)  # 0: nothing to pull, or never started
        if event.failure is None:
            self.progress.update(task, description=PULLED, total=total, completed=total)
        else:  # a total stops the "working" animation; the bytes column then says nothing
            self.progress.update(task, description="failed", total=total or 1, blank=not total)
        self.progress.stop_task(task)

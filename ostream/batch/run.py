"""Running `ostream batch`: INPUT read, the hosts reached, the jobs dispatched over them,
the result lines written in order, the summary; and --dry-run.

Loaded by batch/command.py only when a batch runs, so the other commands never pay for it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ostream.environment import Environment
from ostream.errors import ExitCode, Failed, OutputError, Stop, UsageError, combine
from ostream.output import Writer

if TYPE_CHECKING:
    from ostream.batch.command import Settings
    from ostream.batch.ids import IdSet
    from ostream.batch.jobs import Defaults, JobReader
    from ostream.batch.order import Reorder
    from ostream.batch.progress import Counts
    from ostream.batch.scheduler import Scheduler
    from ostream.batch.shard import Shard
    from ostream.fleet import Connection, Host


def parse_parallel(values: Sequence[str], hosts: Sequence[Host]) -> dict[str, int]:
    """--parallel N (every host) and --parallel URL=N (that host): slots per host URL."""
    from ostream.fleet import parse_hosts
    from ostream.host import HostError

    slots = dict.fromkeys((h.url for h in hosts), 1)
    general: int | None = None
    per_host: dict[str, int] = {}
    for value in values:
        url, _, number = value.rpartition("=")
        if not number.isdigit() or int(number) < 1:
            raise UsageError(f"--parallel: {value!r} is not N or URL=N with N at least 1")
        if not url:
            general = int(number)
            continue
        try:
            key = parse_hosts([url], {})[0].url
        except HostError as exc:
            raise UsageError(f"--parallel: {exc}") from None
        if key not in slots:
            raise UsageError(f"--parallel: {url} is not one of the hosts")
        per_host[key] = int(number)
    for url in slots:
        slots[url] = per_host.get(url, general or 1)
    return slots


class _StreamSink:
    """Result lines to a stream without a descriptor (a test's buffer)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, line: bytes) -> None:
        self._stream.write(line)
        self._stream.flush()

    def close(self) -> None:
        pass


def _open_input(env: Environment, path: str | None) -> Any:
    if path is None or path == "-":
        stdin = env.stdin
        if stdin is None:
            raise UsageError("INPUT: stdin is closed")
        return getattr(stdin, "buffer", stdin)
    try:
        return open(path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _reading(
    env: Environment,
    settings: Settings,
    defaults: Defaults,
    done: IdSet | None,
    shard: Shard | None,
) -> Iterator[tuple[Any, JobReader]]:
    """INPUT, opened (and closed at the end, unless it is stdin), and its jobs."""
    from ostream.batch.jobs import JobReader

    source = _open_input(env, settings.input)
    try:
        reader = JobReader(
            source,
            text=settings.text,
            defaults=defaults,
            done=done,
            shard=shard,
            render=settings.render,
        )
        yield source, reader
    finally:
        if source is not getattr(env.stdin, "buffer", env.stdin):
            source.close()


def _same_file(a: Any, b: int) -> bool:
    try:
        one, two = os.fstat(a.fileno()), os.fstat(b)
    except (AttributeError, ValueError, OSError):
        return False
    return (one.st_dev, one.st_ino) == (two.st_dev, two.st_ino)


def _reach(env: Environment, hosts: list[Host], connection: Connection) -> list[Any]:
    """Read /api/tags and /api/ps from every host; the hosts that answered, as HostStates."""
    from ostream import fleet
    from ostream.batch.scheduler import HostState, model_key
    from ostream.output import write_error

    tags = fleet.models(hosts, connection)
    loaded = fleet.loaded(hosts, connection)
    states = []
    for answer, running in zip(tags, loaded, strict=True):
        if answer.failure is not None:
            if len(hosts) > 1:  # a warning, not the summary: -q keeps it
                message = answer.failure.message or answer.failure.kind
                if answer.host.url not in message:
                    message = f"{answer.host.label}: {message}"
                write_error(env, f"{message}; left out of this run")
            continue
        models = frozenset(model_key(m.name) for m in answer.items)
        on = {model_key(m.name) for m in running.items} & models
        states.append(HostState(answer.host, 1, models, on))
    if not states:  # nothing was run
        raise Failed(combine([a.failure for a in tags if a.failure is not None], len(hosts)))
    return states


def run_batch(
    env: Environment,
    settings: Settings,
    defaults: Defaults,
    hosts: list[Host],
    connection: Connection,
) -> None:
    """The whole run: open --output, read the hosts, dispatch, write, summarise."""
    import dataclasses

    from ostream.batch.order import Reorder
    from ostream.batch.progress import Counts, Live
    from ostream.batch.scheduler import Scheduler
    from ostream.batch.shard import parse_shard
    from ostream.batch.writer import ResultWriter, open_output
    from ostream.output import write_stderr

    shard = parse_shard(settings.shard) if settings.shard is not None else None
    slots = parse_parallel(settings.parallel, hosts)
    sink: Any
    done = None
    if settings.output is not None:
        sink, resume = open_output(settings.output)
        done = resume.done
    elif env.stdout is None:
        raise UsageError("stdout is closed: give --output FILE")
    else:
        try:
            sink = ResultWriter(env.stdout.fileno())
        except (AttributeError, ValueError, OSError):
            sink = _StreamSink(env.stdout)
    try:
        with _reading(env, settings, defaults, done, shard) as (source, reader):
            if settings.output is not None and _same_file(source, sink.fd):
                raise UsageError(f"--output {settings.output} is INPUT itself")
            states = _reach(env, hosts, connection)
            for state in states:
                state.slots = slots[state.host.url]
            out = _Output(Reorder(ordered=not settings.unordered), sink, settings.output)

            once = dataclasses.replace(connection, retries=0)  # the scheduler retries elsewhere
            scheduler = Scheduler(states, once.client, out.emit, retries=settings.retries)
            counts = Counts(reader, scheduler)
            live = Live(counts, env.stderr, color=env.color) if _live(env, settings, sink) else None
            with live if live is not None else contextlib.nullcontext():
                _dispatch(scheduler, reader, out, counts, hosts)
        if not settings.quiet:
            write_stderr(env, f"ostream: {counts.summary()}\n")
        if counts.failed:
            raise Stop(ExitCode.SERVER_ERROR)
    except (UsageError, Failed):  # before any job ran (a bad INPUT, no server)
        if settings.output is not None:
            sink.discard()  # so a file this run created is not left behind
        raise
    finally:
        sink.close()


def dry_run(env: Environment, writer: Writer, settings: Settings, defaults: Defaults) -> None:
    """--dry-run: each job as the request line it would send, in input order, as INPUT
    is read; nothing sent, --output only read (the jobs it holds a success for are
    left out, as a run leaves them). A line that cannot run is its result line."""
    from ostream.batch.jobs import wire_body
    from ostream.batch.results import INVALID_REQUEST, failure_line
    from ostream.batch.shard import parse_shard
    from ostream.ndjson import compact
    from ostream.output import write_stderr

    shard = parse_shard(settings.shard) if settings.shard is not None else None
    done = _done_already(settings.output) if settings.output is not None else None
    jobs = invalid = 0
    with _reading(env, settings, defaults, done, shard) as (_, reader):
        for job in reader:
            if job.error is not None:
                invalid += 1
                writer.line(failure_line(job.custom_id, INVALID_REQUEST, job.error))
                continue
            jobs += 1
            request = {"method": "POST", "url": job.url, "body": wire_body(job)}
            writer.line(compact({"custom_id": job.custom_id, **request}))
    if not settings.quiet:
        skipped = f", {reader.skipped} done already" if reader.skipped else ""
        write_stderr(
            env, f"ostream: dry run: {jobs} to send, {invalid} invalid{skipped}; nothing sent\n"
        )


def _done_already(path: str) -> IdSet | None:
    """The custom_ids --output FILE holds a success for, read without writing it."""
    import stat

    from ostream.batch.resume import scan

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"--output: cannot open {path}: {exc.strerror or exc}") from None
    try:
        return scan(fd, repair=False).done if stat.S_ISREG(os.fstat(fd).st_mode) else None
    finally:
        os.close(fd)


def _live(env: Environment, settings: Settings, sink: Any) -> bool:
    """The live display: on a terminal stderr, unless -q, and not when the result lines
    go to a terminal too (the display would be drawn over them and into them)."""
    to_terminal = env.stdout_tty if settings.output is None else os.isatty(sink.fd)
    return env.stderr_tty and not settings.quiet and not to_terminal


class _Output:
    """The reorder window in front of the sink."""

    def __init__(self, reorder: Reorder[bytes], sink: Any, path: str | None) -> None:
        self.reorder = reorder
        self.sink = sink
        self.path = path  # --output, else None: stdout

    def emit(self, ticket: int, line: bytes) -> None:
        for ready in self.reorder.finish(ticket, line):
            self._write(ready)

    def drain(self) -> None:
        for line in self.reorder.drain():
            self._write(line)

    def _write(self, line: bytes) -> None:
        try:
            self.sink.write(line)
        except BrokenPipeError:
            raise
        except OSError as exc:  # a full disk, an I/O error: exit 1, said once
            if self.path is not None and not exc.filename:
                exc.filename = self.path
            raise OutputError.of(exc) from None


def _dispatch(
    scheduler: Scheduler, reader: JobReader, out: _Output, counts: Counts, hosts: list[Host]
) -> None:
    """Feed the jobs to the scheduler as the window allows; wait for the last one. On
    any exit (a signal, a write error): close what is in flight, write what finished."""
    from ostream.batch.results import INVALID_REQUEST, failure_line
    from ostream.batch.scheduler import not_found_line

    lock = scheduler.lock
    scheduler.start()
    try:
        for job in reader:
            with lock:
                while not out.reorder.can_admit():
                    scheduler.wait(0.25)
                ticket = out.reorder.admit()
                if job.error is not None:
                    counts.invalid += 1
                    out.emit(ticket, failure_line(job.custom_id, INVALID_REQUEST, job.error))
                elif not scheduler.known(job.model or ""):
                    counts.invalid += 1
                    out.emit(ticket, not_found_line(job, hosts))
                else:
                    scheduler.add(job, ticket)
        counts.exhausted = True
        with lock:
            scheduler.closed = True
            lock.notify_all()
            while scheduler.outstanding:
                scheduler.wait(0.25)
    except BaseException:
        scheduler.stop()
        scheduler.join()
        with lock:
            out.drain()
        raise
    finally:
        scheduler.stop()

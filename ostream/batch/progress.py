"""The live display of a batch on a terminal stderr, and the one-line summary.

rich is imported here only: no other command pays for it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ostream.batch.jobs import JobReader
    from ostream.batch.scheduler import Scheduler


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02}:{rest % 60:02}" if hours else f"{rest // 60}:{rest % 60:02}"


class Counts:
    """What the display and the summary say, read from the reader and the scheduler."""

    def __init__(self, reader: JobReader, scheduler: Scheduler) -> None:
        self.reader = reader
        self.scheduler = scheduler
        self.invalid = 0  # lines that could not run, and jobs for a model no host has
        self.exhausted = False
        self.started = time.monotonic()

    @property
    def failed(self) -> int:
        return self.scheduler.failed + self.invalid

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.scheduler.tokens / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        s = self.scheduler
        total = f"/{self.reader.read}" if self.exhausted else ""
        text = f"{s.succeeded} done{total}, {self.failed} failed, {self.reader.skipped} skipped"
        finished = s.succeeded + self.failed + self.reader.skipped
        elapsed = time.monotonic() - self.started
        text += f", {self.rate():,.0f} tokens/s"
        if self.exhausted and finished and self.reader.read > finished:
            left = elapsed / max(1, s.succeeded + self.failed) * (self.reader.read - finished)
            text += f", ETA {_duration(left)}"
        return text

    def summary(self) -> str:
        s = self.scheduler
        elapsed = time.monotonic() - self.started
        return (
            f"batch: {s.succeeded} succeeded, {self.failed} failed, "
            f"{self.reader.skipped} skipped in {elapsed:.1f}s "
            f"({s.tokens:,} tokens, {self.rate():,.0f}/s)"
        )


class Live:
    """A rich live display: the counts, then a line per host (in flight, done)."""

    def __init__(self, counts: Counts, stderr: Any, *, color: bool) -> None:
        from rich.live import Live as RichLive

        from ostream.pull import stderr_console

        self._counts = counts
        console, self._text = stderr_console(stderr, color=color)
        self._live = RichLive(
            get_renderable=self._render, console=console, refresh_per_second=4, transient=True
        )

    def _render(self) -> Any:
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        table.add_row(self._counts.line())
        for state in self._counts.scheduler.hosts:
            note = " (set aside)" if not state.usable(time.monotonic()) else ""
            table.add_row(
                f"  {state.host.label}: {state.in_flight} in flight, {state.done} done{note}"
            )
        return table

    def __enter__(self) -> Live:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._live.stop()
        finally:
            self._text.detach()  # stderr stays open for what follows

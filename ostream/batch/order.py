"""Results out in input order within a bounded window, or as they finish.

Each job dispatched takes the next ticket (`admit`); its result goes in with that
ticket (`finish`), which hands back whatever can be written now. In order, a
result waits for every earlier one; the window bounds the tickets out (running
or waiting), so a slow first job cannot make memory grow: once `can_admit()` is
False the scheduler dispatches nothing new until earlier results are written.

Not thread-safe: call it from one thread, or under the lock that also covers
writing what `finish` returned (else two callers could write out of order).
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_WINDOW = 1024


class Reorder(Generic[T]):
    """Tickets in, results out: in ticket order, or (`ordered=False`) as they come."""

    def __init__(self, window: int = DEFAULT_WINDOW, *, ordered: bool = True) -> None:
        if window < 1:
            raise ValueError("the window holds at least one result")
        self.window = window
        self.ordered = ordered
        self._next_ticket = 0
        self._next_out = 0  # in order: the oldest ticket not yet written
        self._open = 0  # tickets admitted and not yet handed back
        self._waiting: dict[int, T] = {}

    def can_admit(self) -> bool:
        """Whether one more job may be dispatched without the window overflowing."""
        return self._open < self.window

    def admit(self) -> int:
        """The ticket of the next job dispatched (in dispatch order = input order)."""
        if not self.can_admit():
            raise RuntimeError("the window is full: wait for results before dispatching")
        ticket = self._next_ticket
        self._next_ticket += 1
        self._open += 1
        return ticket

    def finish(self, ticket: int, result: T) -> list[T]:
        """Hand in a finished job's result; return those to write now, in order."""
        if not self._next_out <= ticket < self._next_ticket or ticket in self._waiting:
            raise ValueError(f"ticket {ticket} is not out")
        if not self.ordered:
            self._open -= 1
            return [result]
        if ticket != self._next_out:
            self._waiting[ticket] = result
            return []
        ready = [result]
        ticket += 1
        while ticket in self._waiting:
            ready.append(self._waiting.pop(ticket))
            ticket += 1
        self._next_out = ticket
        self._open -= len(ready)
        return ready

    @property
    def pending(self) -> int:
        """Tickets out: jobs running plus results waiting for an earlier one."""
        return self._open

    @property
    def waiting(self) -> int:
        """Finished results held back for an earlier one."""
        return len(self._waiting)

    def drain(self) -> list[T]:
        """Every finished result still held back, in order, skipping the jobs that never
        finished: what an interrupted run writes before it exits (a rerun with the
        same --output runs the missing ones)."""
        ready = [self._waiting[ticket] for ticket in sorted(self._waiting)]
        self._open -= len(ready)
        self._waiting.clear()
        return ready

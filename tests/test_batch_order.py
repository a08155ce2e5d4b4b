"""batch order: input order within a bounded window, or --unordered as they finish."""

from __future__ import annotations

import random

import pytest

from ostream.batch.order import Reorder


def test_results_come_out_in_admission_order_whatever_order_they_finish() -> None:
    reorder: Reorder[str] = Reorder(window=100)
    tickets = [reorder.admit() for _ in range(50)]
    finishing = tickets[:]
    random.Random(7).shuffle(finishing)
    out: list[str] = []
    for ticket in finishing:
        out += reorder.finish(ticket, f"r{ticket}")
    assert out == [f"r{t}" for t in tickets]
    assert reorder.pending == 0 and reorder.waiting == 0


def test_a_finished_result_waits_for_an_earlier_one() -> None:
    reorder: Reorder[str] = Reorder(window=10)
    first, second, third = reorder.admit(), reorder.admit(), reorder.admit()
    assert reorder.finish(third, "c") == []
    assert reorder.finish(second, "b") == []
    assert reorder.waiting == 2
    assert reorder.finish(first, "a") == ["a", "b", "c"]


def test_a_full_window_stops_dispatch_until_the_oldest_is_written() -> None:
    reorder: Reorder[int] = Reorder(window=3)
    slow = reorder.admit()
    others = [reorder.admit(), reorder.admit()]
    assert not reorder.can_admit()
    with pytest.raises(RuntimeError, match="window is full"):
        reorder.admit()
    for ticket in others:
        assert reorder.finish(ticket, ticket) == []
    assert not reorder.can_admit()  # finished but held back: still in the window
    assert reorder.finish(slow, slow) == [0, 1, 2]
    assert reorder.can_admit()


def test_memory_is_bounded_by_the_window() -> None:
    reorder: Reorder[int] = Reorder(window=8)
    slow = reorder.admit()
    held = 0
    for _ in range(1000):
        if not reorder.can_admit():
            break
        held += 1
        assert reorder.finish(reorder.admit(), 0) == []
    assert held == 7 and reorder.waiting == 7
    assert len(reorder.finish(slow, 0)) == 8


def test_unordered_passes_each_result_through_at_once() -> None:
    reorder: Reorder[str] = Reorder(window=2, ordered=False)
    a, b = reorder.admit(), reorder.admit()
    assert not reorder.can_admit()  # the window still bounds jobs in flight
    assert reorder.finish(b, "b") == ["b"]
    assert reorder.can_admit()
    assert reorder.finish(a, "a") == ["a"]


def test_drain_gives_every_finished_result_in_order_skipping_unfinished_ones() -> None:
    reorder: Reorder[str] = Reorder(window=10)
    tickets = [reorder.admit() for _ in range(5)]
    reorder.finish(tickets[3], "d")
    reorder.finish(tickets[1], "b")
    reorder.finish(tickets[2], "c")
    assert reorder.drain() == ["b", "c", "d"]
    assert reorder.waiting == 0


def test_a_ticket_handed_in_twice_or_never_given_is_refused() -> None:
    reorder: Reorder[str] = Reorder(window=4)
    first, second = reorder.admit(), reorder.admit()
    reorder.finish(second, "b")
    with pytest.raises(ValueError):
        reorder.finish(second, "b again")
    with pytest.raises(ValueError):
        reorder.finish(7, "never admitted")
    reorder.finish(first, "a")
    with pytest.raises(ValueError):
        reorder.finish(first, "a again")


def test_the_window_holds_at_least_one() -> None:
    with pytest.raises(ValueError):
        Reorder(window=0)

"""The pytest fixtures, enabled with ``pytest_plugins = ["ostream.testing"]``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ostream.testing.fake import FakeOllama
from ostream.testing.fleet import Fleet
from ostream.testing.sim import Sim


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    """A started fake Ollama server (canned behaviours, no simulated time), stopped afterwards."""
    with FakeOllama() as server:
        yield server


@pytest.fixture
def fake_fleet() -> Iterator[Callable[..., Fleet]]:
    """Start a fleet: ``fake_fleet(3)``, ``fake_fleet(2, Sim(parallel=2))`` or
    ``fake_fleet([Sim(...), Sim(...)])``; every fleet started is stopped afterwards."""
    fleets: list[Fleet] = []

    def start(hosts: int | list[Sim] = 1, sim: Sim | None = None) -> Fleet:
        fleet = Fleet(hosts, sim).start()
        fleets.append(fleet)
        return fleet

    yield start
    for fleet in fleets:
        fleet.stop()

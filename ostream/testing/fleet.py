"""Fleet: several simulated servers at once, each with its own knobs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from types import TracebackType

from ostream.testing.fake import FakeOllama
from ostream.testing.scheduler import Counters
from ostream.testing.sim import Sim


class Fleet:
    """``hosts`` servers with the same :class:`Sim`, or one server per Sim given.

    A context manager; ``fleet[i]`` is the i-th :class:`FakeOllama`, ``urls`` their
    URLs (for ``--host`` or ``OSTREAM_HOSTS``)."""

    def __init__(self, hosts: int | Sequence[Sim] = 1, sim: Sim | None = None) -> None:
        if isinstance(hosts, int):
            sims = [replace(sim or Sim()) for _ in range(hosts)]
        else:
            sims = list(hosts)
        self.servers = [FakeOllama(sim=s) for s in sims]

    def start(self) -> Fleet:
        for server in self.servers:
            server.start()
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __getitem__(self, index: int) -> FakeOllama:
        return self.servers[index]

    def __iter__(self) -> Iterator[FakeOllama]:
        return iter(self.servers)

    def __len__(self) -> int:
        return len(self.servers)

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def counters(self) -> Counters:
        """The servers' counters added up (``busy``: every slot of every server)."""
        total = Counters()
        for server in self.servers:
            c = server.counters
            total.requests += c.requests
            total.served += c.served
            total.tokens += c.tokens
            total.prompt_tokens += c.prompt_tokens
            total.loads += c.loads
            total.swaps += c.swaps
            total.rejected += c.rejected
            total.busy += c.busy
        return total

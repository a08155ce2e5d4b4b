"""How a server is reached: a `Host` (its base URL) and the `Connection` settings
(--timeout, --retries, OLLAMA_API_KEY) every command talks to its hosts with, and
`connection`, the one place those settings are read from the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ostream.client import Client, RetryNotice
    from ostream.environment import Environment


@dataclass(frozen=True)
class Host:
    """One server. Per-host settings (batch's --parallel) will go here."""

    url: str  # the base URL, as host.base_url makes it

    @property
    def label(self) -> str:
        """The URL without "http://", for tables."""
        return self.url.removeprefix("http://")


@dataclass(frozen=True)
class Connection:
    """How every host is talked to: what --timeout, --retries and OLLAMA_API_KEY say."""

    api_key: str | None = None
    timeout: float | None = None
    retries: int = 2

    def client(self, host: Host, on_retry: RetryNotice | None = None) -> Client:
        """A client for `host`; `on_retry` is told of each wait before a retry."""
        from ostream.client import Client

        return Client(
            host.url,
            api_key=self.api_key,
            timeout=self.timeout,
            retries=self.retries,
            on_retry=on_retry,
        )


def connection(env: Environment, timeout: str | None, retries: str) -> Connection:
    """The Connection --timeout, --retries and $OLLAMA_API_KEY ask for; UsageError if not."""
    from ostream.client import api_key
    from ostream.options import parse_retries, parse_timeout

    seconds = parse_timeout(timeout) if timeout is not None else None
    return Connection(api_key(env.environ), seconds, parse_retries(retries))

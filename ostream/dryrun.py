"""`--dry-run`: the request as one JSON line (method, URL, body), and nothing sent.

No headers are shown: the only one that matters is the API key, never printed.
"""

from __future__ import annotations

from typing import Any

from ostream.ndjson import compact
from ostream.output import Writer


def show_request(writer: Writer, method: str, url: str, body: Any) -> None:
    """The request as `{"method": ..., "url": ..., "body": ...}` on stdout."""
    writer.line(compact({"method": method, "url": url, "body": body}))


def show_target_request(
    writer: Writer, target: Any, path: str, body: Any, method: str = "POST"
) -> None:
    """The request `body` would be sent as to `path` on the target's host."""
    from ostream.client import Client

    show_request(writer, method, Client(target.host.url).url(path), body)

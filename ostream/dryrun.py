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

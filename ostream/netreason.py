"""Why a request failed, in a few words: the cause found deep in a requests/urllib3
exception chain, and the proxy a request went through."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator


def via(url: str) -> str:
    """` through the proxy P (from VARIABLE)` when the environment sends `url` through a
    proxy (NO_PROXY respected), else ""; a password in the proxy's URL is never shown."""
    import os
    from urllib.parse import urlsplit

    from requests.utils import get_environ_proxies, select_proxy

    proxy = select_proxy(url, get_environ_proxies(url))
    if not proxy:
        return ""
    parts = urlsplit(proxy if "://" in proxy else "http://" + proxy)
    shown = f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    scheme = urlsplit(url).scheme
    names = [n for s in (scheme, "all") for n in (f"{s}_proxy", f"{s.upper()}_PROXY")]
    source = next((n for n in names if os.environ.get(n) == proxy), None)
    return f" through the proxy {shown}" + (f" (from {source})" if source else "")


def causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(linked, BaseException):
                todo.append(linked)


def is_refused_or_unreachable(exc: BaseException) -> bool:
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    return any(
        isinstance(
            c, (NewConnectionError, NameResolutionError, socket.gaierror, ConnectionRefusedError)
        )
        for c in causes(exc)
    )


def reason(exc: BaseException) -> str:
    """A short human reason from the depths of a requests/urllib3 exception chain."""
    import ssl

    for cause in causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError) and cause.reason:
            return cause.reason.lower().replace("_", " ")
        if isinstance(cause, socket.gaierror):
            return "unknown host"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "network unreachable"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the server"
    text = str(exc)
    if "NameResolutionError" in text or "Name or service not known" in text:
        return "unknown host"
    if "IncompleteRead" in text or "Connection broken" in text or "ended prematurely" in text:
        return "connection closed by the server"
    return text.split(": ", 1)[-1][:200]

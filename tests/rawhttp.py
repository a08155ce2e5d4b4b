"""A byte-level HTTP client for the fake server's own tests: sees chunks and terminators."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import urlsplit


class Raw:
    """A byte-level HTTP/1.1 client: sees chunk boundaries and missing terminators."""

    def __init__(
        self, url: str, path: str = "/api/generate", body: Any = None, method: str = "POST"
    ) -> None:
        parts = urlsplit(url)
        assert parts.hostname and parts.port
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
        self.buf = b""
        data = body if isinstance(body, bytes) else json.dumps(body).encode() if body else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        if data or method == "POST":
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + data)

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def until(self, sep: bytes) -> bytes:
        while sep not in self.buf:
            assert self._fill(), f"EOF before {sep!r}; got {self.buf!r}"
        out, _, self.buf = self.buf.partition(sep)
        return out

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            assert self._fill(), "EOF"
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def head(self) -> tuple[int, dict[str, str]]:
        lines = self.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def chunk(self) -> bytes | None:
        """The next chunk's payload; None for the terminating zero-size chunk."""
        size = int(self.until(b"\r\n"), 16)
        data = self.exact(size)
        assert self.exact(2) == b"\r\n"
        return data if size else None

    def rest(self) -> bytes:
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def close(self) -> None:
        self.sock.close()


def request(
    url: str,
    method: str,
    path: str,
    body: Any = None,
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        data = body if isinstance(body, bytes) else None if body is None else json.dumps(body)
        conn.request(method, path, body=data)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def lines_of(body: bytes) -> list[Any]:
    return [json.loads(line) for line in body.split(b"\n") if line]


def generate(
    url: str,
    model: str,
    prompt: str = "hello world",
    **extra: Any,
) -> tuple[int, dict[str, str], bytes]:
    return request(url, "POST", "/api/generate", {"model": model, "prompt": prompt, **extra})


# --------------------------------------------------------------------------- framing

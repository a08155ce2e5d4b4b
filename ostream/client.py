"""The HTTP side: connect, send, hand out the body as it arrives, close on every path.

requests is imported on first use, so `--help` and `--version` never pay for it.
"""

from __future__ import annotations

import contextlib
import functools
import re
import socket
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from ostream import __version__, netreason
from ostream.errors import ConnectError, ProtocolError, Timeout, UsageError

if TYPE_CHECKING:
    import requests

READ_SIZE = 1 << 16
RETRY_STATUSES = frozenset({429, 503})
DEFAULT_CONNECT_TIMEOUT = 10.0
MAX_BACKOFF = 8.0
# The paths whose answer is a model's tokens (Ollama's and its OpenAI-compatible API).
GENERATION_PATHS = ("/api/generate", "/api/chat", "/v1/chat/completions", "/v1/completions")
REFUSED_HINT = "is `ollama serve` running? (--host, OLLAMA_HOST)"

# Told before each wait for a retry: why (a short phrase), the seconds it will wait,
# which retry is next and how many there can be.
RetryNotice = Callable[[str, float, int, int], None]


class _Unreachable(ConnectError):
    """A ConnectError that also keeps its short cause, for a retry's notice."""

    def __init__(self, message: str, reason: str, *, retry: bool = True) -> None:
        super().__init__(message, retry=retry)
        self.reason = reason


class Response:
    """A streaming response whose connection is closed by `close()`, at once."""

    def __init__(
        self, response: requests.Response, url: str, timeout: float | None, *, via: str = ""
    ) -> None:
        self._response = response
        self.url = url
        self.via = via  # " through the proxy ..." when a proxy carried the request
        self.status: int = response.status_code
        self.reason: str = response.reason or ""
        self.location: str = response.headers.get("location", "")
        self.content_type: str = response.headers.get("content-type", "")
        self.retry_after = _seconds(response.headers.get("retry-after", ""))
        self.received = 0
        self._timeout = timeout
        self._readers: list[Generator[bytes, None, None]] = []

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives: one HTTP chunk at a time (Ollama sends a line a chunk),
        else one network read at a time. Ended by `close()`."""
        reader = self._chunks()
        self._readers.append(reader)
        return reader

    def _chunks(self) -> Generator[bytes, None, None]:
        from urllib3.exceptions import HTTPError, ReadTimeoutError

        pieces = self._pieces()
        try:
            for data in pieces:
                self.received += len(data)
                yield data
        except ReadTimeoutError:
            raise Timeout(
                f"timed out after {self._timeout:g}s waiting"
                f" {_awaited(self.url, self.received)} from {self.url}"
            ) from None
        except HTTPError as exc:
            raise ProtocolError(
                f"the connection to {self.url} broke mid-stream: {netreason.reason(exc)}"
            ) from None
        finally:
            close = getattr(pieces, "close", None)  # urllib3's read_chunked is a generator
            if close is not None:
                close()

    def _pieces(self) -> Iterator[bytes]:
        raw = self._response.raw
        if raw.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
            # Asked for identity, but a proxy compressed it anyway: let urllib3 undo it.
            return iter(functools.partial(raw.read1, READ_SIZE, decode_content=True), b"")
        if raw.chunked and raw.supports_chunked_reads():
            # A generator that yields each chunk as soon as it is whole, and costs
            # less per chunk than read1 (which re-enters http.client for each one).
            return raw.read_chunked(READ_SIZE, decode_content=False)
        return iter(functools.partial(raw.read1, READ_SIZE), b"")

    def read_all(self, limit: int = 1 << 20, *, deadline: float | None = None) -> bytes:
        """Up to `limit` bytes of the body (for error answers); a Timeout when the
        body is still coming at `deadline` (time.monotonic)."""
        parts: list[bytes] = []
        size = 0
        try:
            for data in self.chunks():
                parts.append(data)
                size += len(data)
                if size >= limit:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise Timeout(f"{self.url} did not answer in time")
        except ProtocolError:
            pass
        return b"".join(parts)

    def close(self) -> None:
        # The readers first, here and now: left to the garbage collector, a generator's
        # clean-up runs at some later moment, where an exception a signal handler raises
        # (the reader watch's Stop) cannot propagate and Python prints it instead.
        try:
            while self._readers:
                self._readers.pop().close()
        finally:
            # Closing the socket is how Ollama learns to stop generating.
            try:
                self._response.raw.close()
            finally:
                self._response.close()

    def abort(self) -> None:
        """From another thread: end the connection now. A read blocked in `chunks()`
        returns (a close() alone would wait for it) and the server sees the client leave."""
        sock = getattr(getattr(self._response.raw, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Response:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Client:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        retries: int = 2,
        backoff: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: RetryNotice | None = None,
    ) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._on_retry = on_retry
        self._session: requests.Session | None = None

    def open(self, method: str, path: str, body: bytes | None = None) -> Response:
        """Send the request; return once the status line and headers have arrived.

        Connection failures and 429/503 answers are retried with exponential
        backoff (longer if a Retry-After asks, never over MAX_BACKOFF); nothing
        has been written anywhere yet when that happens.
        """
        attempt = 0
        while True:
            wait = self.backoff * (2**attempt)
            try:
                response = self._send(method, path, body)
            except ConnectError as exc:
                if attempt >= self.retries or not exc.retry:
                    raise
                why = f"cannot connect ({exc.reason if isinstance(exc, _Unreachable) else exc})"
            else:
                if response.status not in RETRY_STATUSES or attempt >= self.retries:
                    return response
                wait = max(wait, response.retry_after)
                why = f"busy (HTTP {response.status})"
                response.close()
            wait = min(wait, MAX_BACKOFF)
            if self._on_retry is not None:
                self._on_retry(why, wait, attempt + 1, self.retries)
            self._sleep(wait)
            attempt += 1

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    def _send(self, method: str, path: str, body: bytes | None) -> Response:
        import requests

        if self._session is None:
            self._session = requests.Session()
            # Like Ollama's Go client: never a proxy (nor ~/.netrc) for a loopback server.
            self._session.trust_env = not _is_loopback(self.base_url)
        url = self.url(path)
        headers = {
            "User-Agent": f"ostream/{__version__}",
            "Accept": "application/x-ndjson, application/json",
            "Accept-Encoding": "identity",
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        connect = self.timeout if self.timeout is not None else DEFAULT_CONNECT_TIMEOUT
        try:
            response = self._session.request(
                method,
                url,
                data=body,
                headers=headers,
                stream=True,
                timeout=(connect, self.timeout),
                allow_redirects=False,  # a redirect would turn a POST into a GET
                auth=self._bearer if self.api_key else None,  # and ~/.netrc can't override it
            )
        except requests.exceptions.ConnectTimeout:
            if self.timeout is None:  # the built-in limit, not --timeout: a host that is not there
                raise self._connect_error(
                    "cannot connect to", f"no answer within {connect:g}s", url, retry=False
                ) from None
            raise Timeout(
                f"timed out after {connect:g}s connecting to {self.base_url}{self._via(url)}"
            ) from None
        except requests.exceptions.ReadTimeout:
            raise Timeout(
                f"timed out after {self.timeout:g}s waiting {_awaited(url, 0)} from {url}"
            ) from None
        except requests.exceptions.SSLError as exc:
            raise self._connect_error(
                "TLS failure connecting to", netreason.reason(exc), url, retry=False
            ) from None
        except requests.exceptions.ConnectionError as exc:
            if netreason.is_refused_or_unreachable(exc):
                raise self._connect_error("cannot connect to", netreason.reason(exc), url) from None
            raise ProtocolError(
                f"{self.base_url} closed the connection without answering: {netreason.reason(exc)}"
            ) from None
        except (requests.exceptions.InvalidHeader, UnicodeEncodeError):
            # Their messages quote the header: never let the key reach the screen.
            raise UsageError("OLLAMA_API_KEY is not a valid HTTP header value") from None
        except requests.exceptions.InvalidURL as exc:
            raise ConnectError(f"invalid URL {url}: {exc}", retry=False) from None
        return Response(response, url, self.timeout, via=self._via(url))

    def _via(self, url: str) -> str:
        """` through the proxy P (from VARIABLE)` when `url` goes through one, else ""."""
        return netreason.via(url) if self._session is not None and self._session.trust_env else ""

    def _connect_error(
        self, what: str, reason: str, url: str, *, retry: bool = True
    ) -> ConnectError:
        """`what` the server failed for `reason`, with the hint that fits: the proxy in
        the way, `ollama serve` for a refusal, http:// for a server that speaks it."""
        message = f"{what} {self.base_url}: {reason}"
        via = self._via(url)
        if via:
            message = f"{what} {self.base_url}{via}: {reason} (NO_PROXY bypasses the proxy)"
        elif reason == "connection refused":
            message += f"; {REFUSED_HINT}"
        elif reason == "wrong version number" and self.base_url.startswith("https://"):
            plain = "http://" + self.base_url.removeprefix("https://")
            message += f"; the server speaks plain http? try {plain}"
        return _Unreachable(message, reason, retry=retry)

    def _bearer(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.api_key}"
        return request


def _awaited(url: str, received: int) -> str:
    """What a read that timed out was waiting for: tokens from a generation, else an answer."""
    from urllib.parse import urlsplit

    if not urlsplit(url).path.rstrip("/").endswith(GENERATION_PATHS):
        return "for more of the answer" if received else "for an answer"
    return "between tokens" if received else "for the first token"


def api_key(environ: Mapping[str, str]) -> str | None:
    """OLLAMA_API_KEY trimmed as Ollama trims its variables (spaces, then quotes); None
    when unset or blank."""
    key = environ.get("OLLAMA_API_KEY", "").strip().strip("\"'")
    if re.search(r"[^\x21-\x7e]", key):  # checked here: http.client's message would quote it
        raise UsageError("OLLAMA_API_KEY holds a space, a control or a non-ASCII character")
    return key or None


def _seconds(value: str) -> float:
    """A Retry-After in seconds; 0 for an HTTP date or nonsense (the backoff decides)."""
    try:
        seconds = float(value)
    except ValueError:
        return 0.0
    return seconds if 0 < seconds < float("inf") else 0.0


def _is_loopback(base_url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(base_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False

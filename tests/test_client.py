"""The HTTP client: retries and timeouts (in-process); the API key, proxies, TLS and
compression (through a real process)."""

from __future__ import annotations

import gzip
import re
import threading
from importlib.metadata import requires
from typing import Any

import pytest

from ostream import client as client_module
from ostream.client import Client
from ostream.errors import ConnectError, Timeout
from ostream.testing import FakeOllama, Reply, Send, Wait, ndjson
from tests.proc import ROOT, closed_port, env_for, run


class FakeResponse:
    def __init__(self, status: int, retry_after: float = 0.0) -> None:
        self.status = status
        self.retry_after = retry_after
        self.closed = False

    def close(self) -> None:
        self.closed = True


def scripted(outcomes: list[Any]) -> tuple[Client, list[float]]:
    sleeps: list[float] = []
    client = Client("http://x", retries=3, backoff=0.25, sleep=sleeps.append)

    def send(method: str, path: str, body: bytes | None) -> Any:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    client._send = send  # type: ignore[method-assign]
    return client, sleeps


def test_connection_failures_are_retried_with_exponential_backoff() -> None:
    final = FakeResponse(200)
    client, sleeps = scripted([ConnectError("a"), ConnectError("b"), final])
    assert client.open("POST", "/api/generate") is final
    assert sleeps == [0.25, 0.5]


def test_busy_answers_are_retried_and_closed() -> None:
    busy = [FakeResponse(503), FakeResponse(429)]
    client, sleeps = scripted([*busy, FakeResponse(200)])
    assert client.open("POST", "/").status == 200
    assert all(r.closed for r in busy)
    assert sleeps == [0.25, 0.5]


def test_connect_errors_that_cannot_improve_are_not_retried() -> None:
    client, sleeps = scripted([ConnectError("tls", retry=False), FakeResponse(200)])
    with pytest.raises(ConnectError, match="tls"):
        client.open("GET", "/")
    assert sleeps == []


def test_the_built_in_connect_limit_is_a_connect_failure_not_a_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.proc import full_backlog

    monkeypatch.setattr(client_module, "DEFAULT_CONNECT_TIMEOUT", 0.3)
    server, fillers = full_backlog()
    url = f"http://127.0.0.1:{server.getsockname()[1]}"
    sleeps: list[float] = []
    try:
        with pytest.raises(ConnectError) as caught:
            Client(url, retries=2, sleep=sleeps.append).open("GET", "/")
    finally:
        for sock in [server, *fillers]:
            sock.close()
    assert str(caught.value) == f"cannot connect to {url}: no answer within 0.3s"
    assert caught.value.code == 3
    assert sleeps == []  # it already waited the whole limit


def test_retry_after_lengthens_the_wait_up_to_the_cap() -> None:
    client, sleeps = scripted([FakeResponse(503, 3), FakeResponse(429, 60), FakeResponse(200)])
    assert client.open("POST", "/").status == 200
    assert sleeps == [3, 8.0]


def test_retry_after_is_read_from_the_server(fake_ollama: FakeOllama) -> None:
    from ostream.testing import Reply

    for value in ("1.5", "Wed, 21 Oct 2015 07:28:00 GMT", "-3"):
        fake_ollama.script(Reply(status=503, headers={"Retry-After": value}), path="/x")
        fake_ollama.script(Reply(status=200), path="/x")
        sleeps: list[float] = []
        response = Client(fake_ollama.url, retries=1, sleep=sleeps.append).open("GET", "/x")
        assert response.status == 200
        response.close()
        assert sleeps == [1.5 if value == "1.5" else 0.25], value


def test_retries_run_out() -> None:
    client, sleeps = scripted([ConnectError(str(i)) for i in range(4)])
    with pytest.raises(ConnectError, match="3"):
        client.open("GET", "/")
    assert len(sleeps) == 3


def test_last_busy_answer_is_returned_for_the_caller_to_report() -> None:
    client, _ = scripted([FakeResponse(503) for _ in range(4)])
    assert client.open("GET", "/").status == 503


@pytest.mark.parametrize("status", [400, 404, 500])
def test_other_statuses_are_not_retried(status: int) -> None:
    client, sleeps = scripted([FakeResponse(status)])
    assert client.open("GET", "/").status == status
    assert sleeps == []


def test_no_read_timeout_unless_asked(fake_ollama: FakeOllama, monkeypatch: Any) -> None:
    seen: list[Any] = []
    import requests

    original = requests.Session.request

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["timeout"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    for timeout in (None, 2.5):
        client = Client(fake_ollama.url, timeout=timeout)
        with client.open("GET", "/api/version") as response:
            assert response.read_all() == b'{"version":"0.12.0"}'
    assert seen == [(client_module.DEFAULT_CONNECT_TIMEOUT, None), (2.5, 2.5)]


def test_backoff_is_capped() -> None:
    client, sleeps = scripted([ConnectError(str(i)) for i in range(9)] + [FakeResponse(200)])
    client.retries = 9
    assert client.open("GET", "/").status == 200
    assert sleeps == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]


# --- the API key: sent as a bearer token, never printed ----------------------------------


def test_api_key_with_a_trailing_newline_is_trimmed_sent_and_never_printed(
    fake_ollama: FakeOllama,
) -> None:
    env = env_for(fake_ollama.url, OLLAMA_API_KEY="sekrit-key-123\n")
    result = run(["generate", "-m", "m", "hi"], fake_ollama.url, env=env)
    assert b"sekrit-key-123" not in result.stderr + result.stdout
    assert b"unexpected" not in result.stderr
    assert result.returncode == 0
    assert fake_ollama.requests[-1].headers["authorization"] == "Bearer sekrit-key-123"


@pytest.mark.parametrize(
    "key", ["sekrit key", "sekrit\nX-Injected: 1", "sekrit\x01", "sekrit-kl\u00fcssel"]
)
def test_api_key_that_cannot_be_a_header_is_a_usage_error_that_does_not_print_it(
    fake_ollama: FakeOllama, key: str
) -> None:
    env = env_for(fake_ollama.url, OLLAMA_API_KEY=key)
    result = run(["raw", "/api/tags"], fake_ollama.url, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith(b"ostream: error: OLLAMA_API_KEY ")
    assert result.stderr.count(b"\n") == 1
    assert b"sekrit" not in result.stderr + result.stdout
    assert fake_ollama.requests == []


# --- proxies -------------------------------------------------------------------------------


def test_a_loopback_server_is_reached_directly_whatever_http_proxy_says(
    fake_ollama: FakeOllama,
) -> None:
    proxy = f"http://127.0.0.1:{closed_port()}"
    env = env_for(fake_ollama.url, http_proxy=proxy, HTTP_PROXY=proxy)
    for key in ("no_proxy", "NO_PROXY"):
        env.pop(key, None)
    result = run(["generate", "-m", "m", "--retries", "0", "hi"], fake_ollama.url, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"echo: hi\n"


# --- packaging -----------------------------------------------------------------------------


def test_dependencies_require_urllib3_2_for_read1() -> None:
    pins = [r for r in requires("ostream") or [] if re.match(r"urllib3\b", r) and ";" not in r]
    assert pins, f"no urllib3 requirement in {requires('ostream')} ({ROOT}/pyproject.toml)"
    assert any(re.search(r">=\s*2", pin) for pin in pins)


# --- TLS and compression -------------------------------------------------------------------


def test_a_tls_failure_is_exit_3_with_one_short_reason(fake_ollama: FakeOllama) -> None:
    url = fake_ollama.url.replace("http://", "https://")
    result = run(["generate", "-m", "m", "hi"], url)
    assert result.returncode == 3
    assert (
        result.stderr
        == f"ostream: error: TLS failure connecting to {url}: wrong version number;"
        f" the server speaks plain http? try {fake_ollama.url}\n".encode()
    )


def test_a_body_a_proxy_compressed_is_decompressed(fake_ollama: FakeOllama) -> None:
    lines = ndjson({"response": "squeezed", "done": False}, {"response": "", "done": True})
    fake_ollama.script(
        Reply(headers={"Content-Encoding": "gzip"}, events=[Send(gzip.compress(lines))])
    )
    result = run(["generate", "-m", "m", "hi"], fake_ollama.url)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"squeezed\n", b"")


def test_each_wait_for_a_retry_is_announced_to_the_callback(fake_ollama: FakeOllama) -> None:
    from ostream.testing import Reply, Send

    for _ in range(2):
        busy = Reply(503, "application/json", [Send(b'{"error":"busy"}')], content_length=True)
        busy.headers["Retry-After"] = "8"
        fake_ollama.script(busy)
    notices: list[tuple[str, float, int, int]] = []
    sleeps: list[float] = []
    client = Client(
        fake_ollama.url,
        retries=2,
        sleep=sleeps.append,
        on_retry=lambda *notice: notices.append(notice),
    )
    with client.open("POST", "/api/generate", b'{"model":"m","prompt":"x"}') as response:
        assert response.status == 200
    assert notices == [("busy (HTTP 503)", 8.0, 1, 2), ("busy (HTTP 503)", 8.0, 2, 2)]
    assert sleeps == [8.0, 8.0]


def test_a_refused_connection_retried_is_announced_with_its_cause() -> None:
    notices: list[tuple[str, float, int, int]] = []
    client = Client(
        f"http://127.0.0.1:{closed_port()}",
        retries=1,
        sleep=lambda _: None,
        on_retry=lambda *notice: notices.append(notice),
    )
    with pytest.raises(ConnectError):
        client.open("GET", "/api/tags")
    assert notices == [("cannot connect (connection refused)", 0.25, 1, 1)]


@pytest.mark.parametrize("path", ["/api/tags", "/api/pull"])
def test_a_timeout_off_the_generation_paths_waits_for_an_answer_not_a_token(
    fake_ollama: FakeOllama, path: str
) -> None:
    gate = threading.Event()
    fake_ollama.script(Reply(events=[Wait(gate, 20), Send(ndjson({"models": []}))]), path)
    client = Client(fake_ollama.url, timeout=0.3, retries=0)
    try:
        with pytest.raises(Timeout) as caught, client.open("GET", path) as response:
            b"".join(response.chunks())
    finally:
        gate.set()
        client.close()
    assert f"waiting for an answer from {fake_ollama.url}{path}" in caught.value.message
    assert "token" not in caught.value.message

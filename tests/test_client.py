"""The HTTP client's retry policy and timeouts, in-process."""

from __future__ import annotations

from typing import Any

import pytest

from ostream import client as client_module
from ostream.client import Client
from ostream.errors import ConnectError
from tests.fake_ollama import FakeOllama


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
    from tests.fake_ollama import Reply

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


def test_each_wait_for_a_retry_is_announced_to_the_callback(fake_ollama: FakeOllama) -> None:
    from tests.fake_ollama import Reply, Send

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
    from tests.test_messages import closed_port

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

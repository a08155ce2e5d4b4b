"""What the user is told when the server cannot be reached or is busy: the hints that
fit (ollama serve, http://, the proxy in the way, -d, ollama pull)."""

from __future__ import annotations

import pytest

from ostream.cli import main
from ostream.testing import FakeOllama
from tests.inproc import environment, err
from tests.proc import closed_port


@pytest.fixture(autouse=True)
def _no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests reads the proxy variables from the process, not from the Environment.
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_a_refused_connection_asks_whether_ollama_serve_is_running() -> None:
    env = environment(f"http://127.0.0.1:{closed_port()}")
    assert main(["generate", "-m", "m", "--retries", "0", "x"], env=env) == 3
    assert (
        err(env)
        .decode()
        .endswith(": connection refused; is `ollama serve` running? (--host, OLLAMA_HOST)\n")
    )


def test_tls_to_a_plain_http_server_suggests_http(fake_ollama: FakeOllama) -> None:
    https = fake_ollama.url.replace("http://", "https://")
    env = environment(https)
    assert main(["generate", "-m", "m", "x"], env=env) == 3
    message = err(env).decode()
    assert "TLS failure" in message and "wrong version number" in message
    assert f"the server speaks plain http? try {fake_ollama.url}" in message


def test_a_connect_failure_through_a_proxy_names_the_proxy_not_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = closed_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://user:secret@127.0.0.1:{port}")
    env = environment("http://ollama.invalid:11434")
    assert main(["generate", "-m", "m", "--retries", "0", "x"], env=env) == 3
    message = err(env).decode()
    assert f"through the proxy http://127.0.0.1:{port} (from HTTP_PROXY)" in message
    assert "secret" not in message and "ollama serve" not in message


def test_a_proxy_is_not_named_where_it_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from ostream.netreason import via as _via

    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "ollama.internal")
    assert _via("http://ollama.internal:11434/api/generate") == ""
    assert _via("http://other:11434/api/generate").startswith(" through the proxy")
    # A loopback server never goes through the proxy (as with Ollama's own client).
    env = environment(f"http://127.0.0.1:{closed_port()}")
    assert main(["generate", "-m", "m", "--retries", "0", "x"], env=env) == 3
    assert b"proxy" not in err(env) and b"ollama serve" in err(env)


def test_waiting_for_a_retry_is_told_on_a_terminal_stderr(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url, stderr_tty=True)
    assert main(["generate", "-m", "busy-once", "x"], env=env) == 0
    assert err(env) == b"ostream: busy (HTTP 503), retrying in 0.25 s (1/2)\n"


def test_waiting_for_a_retry_is_silent_off_a_terminal(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url)
    assert main(["generate", "-m", "busy-once", "x"], env=env) == 0
    assert err(env) == b""


def test_raw_tells_of_a_retry_too(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url, stderr_tty=True)
    assert main(["raw", "-d", '{"model":"busy-once","prompt":"x"}'], env=env) == 0
    assert err(env).startswith(b"ostream: busy (HTTP 503), retrying in 0.25 s (1/2)\n")


def test_an_error_answer_that_came_through_a_proxy_says_so(
    fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ostream.testing import text_reply

    monkeypatch.setenv("http_proxy", fake_ollama.url)  # the fake stands in for the proxy
    fake_ollama.script(text_reply(502, "<html>Bad Gateway</html>", "text/html"))
    env = environment("http://ollama.invalid:11434")
    assert main(["generate", "-m", "m", "x"], env=env) == 1
    port = fake_ollama.url.rsplit(":", 1)[1]
    assert err(env).decode() == (
        "ostream: error: HTTP 502 Bad Gateway from http://ollama.invalid:11434/api/generate"
        f" through the proxy http://127.0.0.1:{port} (from http_proxy):"
        " '<html>Bad Gateway</html>'\n"
    )

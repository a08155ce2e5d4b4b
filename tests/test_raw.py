"""raw: the body is sent as given and the response copied byte for byte, whatever the
server does; what cannot be sent is refused before sending."""

from __future__ import annotations

import os
import pty

import pytest

from tests.fake_ollama import FakeOllama, Reply, text_reply
from tests.proc import run

# --- error bodies and redirects ------------------------------------------------------------


def test_a_big_error_body_is_copied_whole(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(text_reply(500, "e" * 3_000_000))
    result = run(["raw", "-d", "{}"], fake_ollama.url)
    assert result.returncode == 1
    assert len(result.stdout) == 3_000_000


def test_a_redirect_is_not_followed_so_method_and_body_are_never_changed(
    fake_ollama: FakeOllama,
) -> None:
    fake_ollama.script(
        Reply(
            status=301,
            headers={"Location": fake_ollama.url + "/api/elsewhere"},
            events=[],
            content_length=True,
        )
    )
    result = run(["raw", "-d", '{"a":1}'], fake_ollama.url)
    assert result.returncode == 1
    assert b"redirects to " + fake_ollama.url.encode() + b"/api/elsewhere" in result.stderr
    assert [(r.method, r.path, r.body) for r in fake_ollama.requests] == [
        ("POST", "/api/generate", b'{"a":1}')
    ]


# --- what cannot be sent is refused before sending -----------------------------------------


@pytest.mark.parametrize("method", ["GE T", "GET\r", "GET\n"])
def test_a_method_that_is_not_an_http_token_is_a_usage_error(
    fake_ollama: FakeOllama, method: str
) -> None:
    result = run(["raw", "-X", method, "/api/tags"], fake_ollama.url)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"ostream: error: -X: {method!r} is not an HTTP method\n".encode()
    assert fake_ollama.requests == []


def test_data_dash_with_stdin_a_terminal_is_a_usage_error_that_says_so(
    fake_ollama: FakeOllama,
) -> None:
    primary, secondary = pty.openpty()
    try:
        result = run(["raw", "-d", "-"], fake_ollama.url, stdin=secondary)
    finally:
        os.close(secondary)
        os.close(primary)
    assert result.returncode == 2
    assert result.stderr == (
        b"ostream: error: -d -: stdin is a terminal or closed; pipe the body in\n"
    )
    assert fake_ollama.requests == []

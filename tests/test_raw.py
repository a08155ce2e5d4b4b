"""raw: the body is sent as given and the response copied byte for byte, whatever the
server does; what cannot be sent is refused before sending."""

from __future__ import annotations

import json
import os
import pty
from pathlib import Path

import pytest

from ostream.testing import Drop, FakeOllama, Reply, Send, error_reply, text_reply
from tests.inproc import invoke
from tests.proc import run

# --- the body sent as given, the response copied, in-process -------------------------------


def test_raw_posts_the_body_unchanged(fake_ollama: FakeOllama) -> None:
    body = '{"model":"m",  "prompt":"hi"}'
    result = invoke(fake_ollama, "raw", "/api/generate", input=body)
    assert result.exit_code == 0
    request = fake_ollama.requests[-1]
    assert (request.method, request.path, request.body) == ("POST", "/api/generate", body.encode())
    assert result.stdout.encode() == request.sent_bytes


def test_raw_get_without_body_and_method_override(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "raw", "/api/tags")
    assert result.exit_code == 0
    assert "llama3.1" in json.loads(result.stdout)["models"][0]["name"]
    assert fake_ollama.requests[-1].method == "GET"
    result = invoke(fake_ollama, "raw", "/api/delete", "-X", "delete", "-d", '{"model":"m"}')
    assert result.exit_code == 0
    assert fake_ollama.requests[-1].method == "DELETE"


def test_raw_data_from_file(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text('{"model":"m"}')
    result = invoke(fake_ollama, "raw", "/api/pull", "-d", f"@{tmp_path / 'b.json'}")
    assert result.exit_code == 0
    assert json.loads(result.stdout.splitlines()[-1]) == {"status": "success"}


def test_raw_invalid_json_is_a_usage_error_and_nothing_sent(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "raw", "-d", "{not json")
    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr
    assert fake_ollama.requests == []


def test_raw_error_status_body_goes_to_stdout(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "raw", "/api/nope")
    assert result.exit_code == 1
    assert result.stdout == "404 page not found"
    assert result.stderr.startswith("ostream: error: HTTP 404")


def test_raw_missing_model_is_exit_4(fake_ollama: FakeOllama) -> None:
    result = invoke(fake_ollama, "raw", "/api/generate", "-d", '{"model":"missing"}')
    assert result.exit_code == 4
    assert json.loads(result.stdout)["error"] == "model 'missing' not found"


def test_raw_404_that_is_not_about_a_model_is_exit_1(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(error_reply(404, "no such blob"), path="/api/blobs/x")
    result = invoke(fake_ollama, "raw", "/api/blobs/x")
    assert result.exit_code == 1


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


def test_data_that_is_not_utf8_is_a_usage_error(fake_ollama: FakeOllama) -> None:
    result = run(["raw", "-d", b'{"a":"\xff"}'], fake_ollama.url)
    assert result.returncode == 2
    assert result.stderr == b"ostream: error: -d: the body is not valid UTF-8\n"
    assert fake_ollama.requests == []


def test_a_body_file_in_utf16_is_a_usage_error(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    body = tmp_path / "u16.json"
    body.write_bytes('{"model":"m","prompt":"hi"}'.encode("utf-16"))
    result = invoke(fake_ollama, "raw", "-d", f"@{body}")
    assert result.exit_code == 2
    assert result.output == "ostream: error: the request body is not valid UTF-8\n"
    assert fake_ollama.requests == []


# --- bodies cut short ----------------------------------------------------------------------


def test_a_body_cut_mid_line_is_copied_and_is_a_protocol_error(fake_ollama: FakeOllama) -> None:
    body = b'{"response":"a","done":false}\n{"response":"b","do'
    fake_ollama.script(Reply(chunked=False, events=[Send(body)]))
    result = run(["raw", "-d", '{"model":"x","prompt":"hi"}'], fake_ollama.url)
    assert result.returncode == 5, result.stderr
    assert result.stdout == body
    assert result.stderr == b"ostream: error: the stream ended before the model finished\n"


def test_the_partial_line_is_kept_when_the_connection_breaks(fake_ollama: FakeOllama) -> None:
    body = [b'{"response":"a","done":false}\n', b'{"response":"b","do']
    fake_ollama.script(Reply(events=[Send(body[0]), Send(body[1]), Drop()]))
    result = run(["raw", "-d", '{"model":"x","prompt":"hi"}'], fake_ollama.url)
    assert result.returncode == 5
    assert result.stdout == b"".join(body)
    assert b"broke mid-stream" in result.stderr


def test_a_text_body_without_a_newline_is_copied_and_not_judged(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(
        Reply(content_type="text/plain", chunked=False, events=[Send(b"Ollama is running")]),
        path="/",
    )
    result = run(["raw", "/"], fake_ollama.url)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"Ollama is running", b"")

"""raw: the body is sent as given and the response copied byte for byte, whatever the
server does; what cannot be sent is refused before sending."""

from __future__ import annotations

import json
import os
import pty
from pathlib import Path

import pytest

from ostream.cli import main
from ostream.terminal import visible_bytes
from ostream.testing import Drop, FakeOllama, Reply, Send, error_reply, text_reply
from tests.inproc import environment, err, invoke, out
from tests.proc import drain_pty, run, spawn

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
    assert result.stderr == (
        b"ostream: error: -d is not valid UTF-8 (arguments are read as UTF-8 whatever the locale)\n"
    )
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


# --- the request body it sends and how the answer reaches a terminal or a pipe -------------


ESCAPES = "before \x1b]0;title\x07 \x1b[2J after \x9b31m end\n"


# --------------------------------------------------------------------------- terminals


def test_a_text_error_body_cannot_drive_a_terminal(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(text_reply(500, ESCAPES), path="/api/tags")
    env = environment(fake_ollama.url, stdout_tty=True)
    assert main(["raw", "/api/tags"], env=env) == 1
    assert out(env) == b"before ^[]0;title^G ^[[2J after <U+009B>31m end\n"
    assert b"\x1b" not in err(env)


def test_a_json_labelled_body_that_is_not_json_is_made_safe_too(fake_ollama: FakeOllama) -> None:
    reply = Reply(200, "application/json", [Send(b"\x1b[2J{oops\n")], content_length=True)
    fake_ollama.script(reply, path="/api/tags")
    env = environment(fake_ollama.url, stdout_tty=True)
    assert main(["raw", "/api/tags"], env=env) == 0
    assert out(env) == b"^[[2J{oops\n"


def test_json_lines_reach_a_terminal_unchanged(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url, stdout_tty=True)
    assert main(["raw", "-d", '{"model":"control","prompt":"x"}'], env=env) == 0
    shown = out(env)
    assert b"\\u001b]0;pwned\\u0007" in shown  # escaped by JSON: nothing to change
    env = environment(fake_ollama.url)
    assert main(["raw", "-d", '{"model":"control","prompt":"x"}'], env=env) == 0
    assert out(env).count(b"\n") == shown.count(b"\n")


def test_off_a_terminal_the_body_passes_byte_for_byte(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(text_reply(500, ESCAPES), path="/api/tags")
    env = environment(fake_ollama.url)
    assert main(["raw", "/api/tags"], env=env) == 1
    assert out(env) == ESCAPES.encode()


def test_crlf_line_ends_stay_and_a_lone_cr_is_shown() -> None:
    assert visible_bytes(b"<p>\r\nok\r\n") == b"<p>\r\nok\r\n"
    assert visible_bytes(b"fake\rreal\n") == b"fake^Mreal\n"
    assert visible_bytes(b"caf\xe9 \x9b") == "caf\ufffd \ufffd".encode()


def test_a_text_body_on_a_real_terminal_is_shown_safely(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(text_reply(500, ESCAPES), path="/api/tags")
    master, slave = pty.openpty()
    proc = spawn(["raw", "/api/tags"], fake_ollama.url, stdout=slave)
    os.close(slave)
    shown = drain_pty(master)
    assert proc.wait(timeout=30) == 1
    assert b"\x1b" not in shown and b"\x07" not in shown
    assert b"before ^[]0;title^G ^[[2J after" in shown


def test_a_text_body_into_a_pipe_is_byte_for_byte(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(text_reply(500, ESCAPES), path="/api/tags")
    result = run(["raw", "/api/tags"], fake_ollama.url)
    assert result.returncode == 1
    assert result.stdout == ESCAPES.encode()


# --------------------------------------------------------------------------- bodies and hints


def test_a_body_taken_from_stdin_that_is_not_json_says_where_it_came_from(
    fake_ollama: FakeOllama,
) -> None:
    env = environment(fake_ollama.url, stdin=b"line from a while-read loop\n")
    assert main(["raw"], env=env) == 2
    message = err(env).decode()
    assert "not valid JSON" in message
    assert "read from stdin, which is not a terminal: give -d, or </dev/null" in message
    assert fake_ollama.requests == []


def test_a_body_given_with_d_that_is_not_json_has_no_stdin_hint(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url, stdin=b"nope")
    assert main(["raw", "-d", "-"], env=env) == 2
    assert b"not valid JSON" in err(env)
    assert b"stdin, which" not in err(env)


def test_bare_raw_on_a_terminal_hints_at_d(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url, stdin=b"", stdin_tty=True)
    assert main(["raw"], env=env) == 1
    assert fake_ollama.requests[-1].method == "GET"
    assert out(env) == b"405 method not allowed"
    assert b"HTTP 405" in err(env)
    assert b"no body was given, so this was a GET: give -d JSON" in err(env)


def test_raws_missing_model_carries_the_pull_hint(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url)
    assert main(["raw", "-d", '{"model":"missing","prompt":"x"}'], env=env) == 4
    assert err(env) == b"ostream: error: model 'missing' not found; try: ollama pull missing\n"
    assert b"not found" in out(env)  # the body itself still goes to stdout


def test_an_explicit_get_refused_with_405_has_no_hint(fake_ollama: FakeOllama) -> None:
    env = environment(fake_ollama.url, stdin_tty=True)
    assert main(["raw", "-X", "GET"], env=env) == 1
    assert b"HTTP 405" in err(env) and b"-d" not in err(env)

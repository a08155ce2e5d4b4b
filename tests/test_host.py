"""--host / OLLAMA_HOST → base URL, by Ollama's rules; what cannot be parsed is refused
without echoing a password."""

from __future__ import annotations

import pytest

from ostream.host import DEFAULT_URL, HostError, base_url, resolve
from tests.proc import run, run_python


@pytest.mark.parametrize(
    ("value", "url"),
    [
        # The table in OLLAMA-API.md, row by row.
        (None, "http://127.0.0.1:11434"),
        ("", "http://127.0.0.1:11434"),
        ("1.2.3.4", "http://1.2.3.4:11434"),
        ("example.com:1234", "http://example.com:1234"),
        ("[::1]:1337", "http://[::1]:1337"),
        ("http://1.2.3.4", "http://1.2.3.4:80"),
        ("https://example.com/ollama", "https://example.com:443/ollama"),
        ("' 1.2.3.4 '", "http://1.2.3.4:11434"),
        (":1234", "http://127.0.0.1:1234"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("ollama.com", "https://ollama.com:443"),
        # Further cases.
        ("   ", DEFAULT_URL),
        ("''", DEFAULT_URL),
        ("localhost", "http://localhost:11434"),
        ("http://localhost:8080/", "http://localhost:8080"),
        ("https://h/a/b/", "https://h:443/a/b"),
        ("::1", "http://[::1]:11434"),
        ("[::1]", "http://[::1]:11434"),
        ('"http://h:1"', "http://h:1"),
        (" 'example.com:1234' ", "http://example.com:1234"),
        ("HTTP://h", "http://h:80"),
        ("HttpS://h", "https://h:443"),
        ("http://:1234", "http://127.0.0.1:1234"),
        ("0.0.0.0:8080", "http://127.0.0.1:8080"),
        ("::", "http://[::1]:11434"),
        ("[::]", "http://[::1]:11434"),
        ("[::]:99", "http://[::1]:99"),
        ("http://[0:0:0:0:0:0:0:1]:8", "http://[::1]:8"),
        ("[fe80::1%eth0]:5", "http://[fe80::1%25eth0]:5"),
        ("[fe80::1%25eth0]", "http://[fe80::1%25eth0]:11434"),
        ("ollama.com:443", "http://ollama.com:443"),
        ("https://ollama.com", "https://ollama.com:443"),
        ("my_host.local.:1", "http://my_host.local.:1"),
        ("h:080", "http://h:80"),
        # Leading zeros: decimal, as Go's strconv.ParseInt(port, 10, 32) and dialer read them.
        ("localhost:011434", "http://localhost:11434"),
        ("http://h:0000000000000080/x", "http://h:80/x"),
        ("[::1]:011434", "http://[::1]:11434"),
        ("h:65535", "http://h:65535"),
        ("http://h//", "http://h:80"),
        ("https://h:8443/x/y", "https://h:8443/x/y"),
    ],
)
def test_base_url(value: str | None, url: str) -> None:
    assert base_url(value) == url


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("http://x:99999", "port must be 1-65535"),
        ("x:0", "port must be 1-65535"),
        ("x:000000", "port must be 1-65535"),
        ("x:0065536", "port must be 1-65535"),
        ("x:" + "0" * 5000 + "1" * 6, "port must be 1-65535"),
        ("x:", "port must be 1-65535"),
        ("x:abc", "port must be 1-65535"),
        ("x:+80", "port must be 1-65535"),
        ("x:-1", "port must be 1-65535"),
        ("[::1]:", "port must be 1-65535"),
        ("ftp://x", "scheme must be http or https"),
        ("unix:///run/ollama.sock", "scheme must be http or https"),
        ("://x", "scheme must be http or https"),
        ("http://", "missing host"),
        ("https:///x", "missing host"),
        ("/ollama", "missing host"),
        ("http://exa mple.com", "not a valid host name"),
        ("http://exa\tmple.com", "not a valid host name"),
        ("http:// h", "not a valid host name"),
        ("user@h", "user:password@ part is not supported"),
        ("a:b:c", "not a valid host name"),
        ("bücher.de", "not a valid host name"),
        ("a..b", "not a valid host name"),
        ("[fe80::1%a b]", "not a valid IPv6 zone"),
        ("[::1", "unbalanced brackets"),
        ("::1]", "unbalanced brackets"),
        ("[::1]]", "unbalanced brackets"),
        ("[[::1]]", "unbalanced brackets"),
        ("[::1]x", "unbalanced brackets"),
        ("h/a b", "invalid character in path"),
        ("h/a?b", "invalid character in path"),
    ],
)
def test_base_url_errors(value: str, why: str) -> None:
    with pytest.raises(HostError) as info:
        base_url(value)
    shown = "***@" + value.rpartition("@")[2] if "@" in value else value  # no user:password
    assert str(info.value).startswith(f"invalid host {shown!r}: ")
    assert why in str(info.value)


def test_error_message_exact() -> None:
    with pytest.raises(HostError, match=r"^invalid host 'http://x:99999': port must be 1-65535$"):
        base_url("http://x:99999")


def test_host_error_is_value_error() -> None:
    assert issubclass(HostError, ValueError)


@pytest.mark.parametrize(
    ("cli", "environ", "url"),
    [
        (None, {}, DEFAULT_URL),
        (None, {"OLLAMA_HOST": ""}, DEFAULT_URL),
        (None, {"OLLAMA_HOST": "h:1"}, "http://h:1"),
        ("c:2", {}, "http://c:2"),
        ("c:2", {"OLLAMA_HOST": "h:1"}, "http://c:2"),
        ("", {"OLLAMA_HOST": "h:1"}, DEFAULT_URL),
        ("c:2", {"OLLAMA_HOST": "ftp://bad"}, "http://c:2"),
    ],
)
def test_resolve(cli: str | None, environ: dict[str, str], url: str) -> None:
    assert resolve(cli, environ) == url


def test_resolve_bad_env_value() -> None:
    with pytest.raises(HostError, match=r"^invalid host 'h:0': port"):
        resolve(None, {"OLLAMA_HOST": "h:0"})


def test_import_is_light() -> None:
    code = (
        "import ostream.host, sys; "
        "assert 'requests' not in sys.modules and 'typer' not in sys.modules"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "host",
    ["http://ann:hunter2@host:99999", "http://ann:hun@ter2@host:1", "ann:it's\\hunter2@host"],
)
def test_a_password_in_host_is_refused_without_being_echoed(host: str) -> None:
    result = run(["generate", "-m", "m", "--host", host, "hi"], "")
    assert result.returncode == 2
    assert b"hunter2" not in result.stderr and b"ter2" not in result.stderr
    assert b"***@host" in result.stderr
    assert b"user:password@ part is not supported" in result.stderr


def test_host_error_is_a_usage_error_wherever_it_is_raised() -> None:
    from ostream.errors import ExitCode, UsageError, classify

    assert issubclass(HostError, UsageError)
    assert classify(HostError("invalid host 'x:0': port")).code == ExitCode.USAGE

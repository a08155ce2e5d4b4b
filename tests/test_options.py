"""Request options are parsed exactly, and bad ones are usage errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ostream.errors import ExitCode, UsageError
from ostream.inputs import load_tools, read_images
from ostream.options import (
    parse_format,
    parse_keep_alive,
    parse_options,
    parse_retries,
    parse_think,
    parse_timeout,
)
from ostream.testing import FakeOllama
from tests.proc import run


def test_option_values_are_json_when_they_parse_else_strings() -> None:
    assert parse_options(
        [
            "temperature=0.2",
            "num_ctx=4096",
            'stop=["\\n"]',
            "seed=-1",
            "mirostat=true",
            "name=llama",
            "x=",
            "expr=a=b",
        ]
    ) == {
        "temperature": 0.2,
        "num_ctx": 4096,
        "stop": ["\n"],
        "seed": -1,
        "mirostat": True,
        "name": "llama",
        "x": "",
        "expr": "a=b",
    }


@pytest.mark.parametrize("pair", ["temperature", "=1", " =1"])
def test_option_without_key_or_equals_is_a_usage_error(pair: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_options([pair])
    assert info.value.code == ExitCode.USAGE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("false", False),
        ("TRUE", True),
        ("low", "low"),
        ("medium", "medium"),
        ("high", "high"),
        ("max", "max"),
    ],
)
def test_think_values(value: str, expected: object) -> None:
    assert parse_think(value) == expected


@pytest.mark.parametrize("value", ["yes", "1", "", "extreme"])
def test_bad_think_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError):
        parse_think(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5m", "5m"),
        ("1h30m", "1h30m"),
        ("300ms", "300ms"),
        ("1.5h", "1.5h"),
        ("-1m", "-1m"),
        ("0", 0),
        ("-1", -1),
        ("300", 300),
        ("2.5", 2.5),
        ("+5", 5),
        ("007", 7),
    ],
)
def test_keep_alive(value: str, expected: object) -> None:
    result = parse_keep_alive(value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "value",
    ["5 minutes", "m", "5x", "", "1h30", "1_0", "\uff11\uff12", "1e300", "inf", "-", "1" * 5000],
)
def test_bad_keep_alive_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError):
        parse_keep_alive(value)


def test_format_json_inline_schema_and_file(tmp_path: Path) -> None:
    schema = '{"type":"object","properties":{"a":{"type":"string"}}}'
    (tmp_path / "s.json").write_text(schema)
    assert parse_format("json", {}) == "json"
    assert parse_format(schema, {})["type"] == "object"
    assert parse_format(f"@{tmp_path / 's.json'}", {})["properties"] == {"a": {"type": "string"}}


@pytest.mark.parametrize("value", ["yaml", "{bad", "[1]", "@/nonexistent/schema.json", "@"])
def test_bad_format_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError):
        parse_format(value, {})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("JSON", "--format takes json, a JSON schema or @file.json; not 'JSON'"),
        ("@", "--format: no file name"),
    ],
)
def test_bad_format_says_what_it_takes(value: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_format(value, {})
    assert info.value.message == message


def test_empty_image_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(UsageError) as info:
        read_images([str(tmp_path / "empty.png")], None, {})
    assert info.value.message == f"--image: {tmp_path / 'empty.png'} is empty"


def test_images_are_base64(tmp_path: Path) -> None:
    data = bytes(range(256))
    (tmp_path / "a.png").write_bytes(data)
    assert read_images([str(tmp_path / "a.png")], None, {}) == [base64.b64encode(data).decode()]


def test_unreadable_image_is_a_usage_error_naming_it() -> None:
    with pytest.raises(UsageError) as info:
        read_images(["/nonexistent/cat.png"], None, {})
    assert "/nonexistent/cat.png" in info.value.message


def test_tools_file_must_be_a_json_array(tmp_path: Path) -> None:
    good = tmp_path / "tools.json"
    good.write_text('[{"type":"function","function":{"name":"f"}}]')
    assert load_tools(str(good), {})[0]["function"]["name"] == "f"
    bad = tmp_path / "bad.json"
    bad.write_text('{"type":"function"}')
    with pytest.raises(UsageError):
        load_tools(str(bad), {})


# --- only strict JSON is sent; numbers JSON cannot hold are refused ------------------------


def strict_json(data: bytes) -> Any:
    """`data` parsed as JSON, refusing NaN and Infinity (which Python's json accepts)."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(data, parse_constant=refuse)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["raw", "-d", '{"model":"m","prompt":"x","options":{"temperature":NaN}}'],
            "the request body is not valid JSON: NaN is not JSON",
        ),
        (
            ["generate", "-m", "m", "--keep-alive", "inf", "x"],
            "--keep-alive takes a duration like 5m or 1h30m, or seconds; not 'inf'",
        ),
    ],
    ids=["raw-NaN", "keep-alive-inf"],
)
def test_a_non_finite_number_is_refused_before_sending(
    fake_ollama: FakeOllama, args: list[str], message: str
) -> None:
    result = run(args, fake_ollama.url)
    assert result.returncode == 2
    assert result.stderr == f"ostream: error: {message}\n".encode()
    assert fake_ollama.requests == []


def test_an_option_value_of_nan_is_sent_as_the_string_nan(fake_ollama: FakeOllama) -> None:
    result = run(["generate", "-m", "m", "-o", "temperature=NaN", "x"], fake_ollama.url)
    assert result.returncode == 0, result.stderr
    assert strict_json(fake_ollama.requests[-1].body)["options"] == {"temperature": "NaN"}


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_a_timeout_that_is_not_finite_is_a_usage_error(fake_ollama: FakeOllama, value: str) -> None:
    result = run(["generate", "-m", "m", "--timeout", value, "x"], fake_ollama.url)
    assert result.returncode == 2
    assert result.stderr == (
        b"ostream: error: --timeout takes a number of seconds greater than 0,"
        b" like 30 or 2.5; not '" + value.encode() + b"'\n"
    )
    assert fake_ollama.requests == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "num_ctx=1e400"], "-o num_ctx: 1e400 is out of range"),
        (
            ["--format", '{"type":"object","maximum":1e400}'],
            "--format: invalid JSON: 1e400 is out of range",
        ),
    ],
    ids=["option", "format"],
)
def test_a_number_out_of_range_is_a_usage_error(
    fake_ollama: FakeOllama, args: list[str], message: str
) -> None:
    result = run(["generate", "-m", "m", *args, "hi"], fake_ollama.url)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"ostream: error: {message}\n".encode()
    assert fake_ollama.requests == []


# --------------------------------------------------------------------------- --image -


def test_image_dash_reads_the_image_from_stdin_and_stdin_is_not_the_prompt(
    fake_ollama: FakeOllama,
) -> None:
    from ostream.cli import main
    from tests.inproc import environment

    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    env = environment(fake_ollama.url, stdin=png)
    assert main(["generate", "-m", "m", "--image", "-", "describe"], env=env) == 0
    sent = fake_ollama.requests[-1].json
    assert sent["images"] == [base64.b64encode(png).decode()]
    assert sent["prompt"] == "describe"
    env = environment(fake_ollama.url, stdin=png)
    assert main(["chat", "-m", "m", "--image", "-", "describe"], env=env) == 0
    (message,) = fake_ollama.requests[-1].json["messages"]
    assert message["images"] == [base64.b64encode(png).decode()]
    assert message["content"] == "describe"


def test_image_dash_twice_or_with_messages_dash_is_a_usage_error(fake_ollama: FakeOllama) -> None:
    from ostream.cli import main
    from tests.inproc import environment, err

    env = environment(fake_ollama.url, stdin=b"img")
    assert main(["generate", "-m", "m", "--image", "-", "--image", "-", "x"], env=env) == 2
    assert b"--image - can be given only once" in err(env)
    env = environment(fake_ollama.url, stdin=b"img")
    assert main(["chat", "-m", "m", "--image", "-", "--messages", "-", "x"], env=env) == 2
    assert b"cannot both read stdin" in err(env)
    assert fake_ollama.requests == []


def test_image_dash_needs_a_piped_stdin(fake_ollama: FakeOllama) -> None:
    from ostream.cli import main
    from tests.inproc import environment, err

    env = environment(fake_ollama.url, stdin=b"", stdin_tty=True)
    assert main(["generate", "-m", "m", "--image", "-", "x"], env=env) == 2
    assert b"--image -: stdin is a terminal or closed" in err(env)
    env = environment(fake_ollama.url, stdin=b"")
    assert main(["generate", "-m", "m", "--image", "-", "x"], env=env) == 2
    assert b"--image: stdin is empty" in err(env)


# --- --timeout and --retries: plain ASCII numbers, our wording ------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"), [("30", 30.0), ("2.5", 2.5), (".5", 0.5), (" 5", 5.0)]
)
def test_timeout_is_seconds_in_ascii_digits(value: str, seconds: float) -> None:
    assert parse_timeout(value) == seconds


@pytest.mark.parametrize(
    "value", ["1_0", "0", "0.0", "", "abc", "-1", "+1", "inf", "nan", "1e3", "\u0661", "1000000001"]
)
def test_a_timeout_that_is_not_plain_positive_seconds_is_refused(value: str) -> None:
    with pytest.raises(UsageError, match=r"^--timeout takes ") as caught:
        parse_timeout(value)
    assert caught.value.code == ExitCode.USAGE


@pytest.mark.parametrize(("value", "count"), [("0", 0), ("2", 2), ("007", 7), ("1000000", 1000000)])
def test_retries_is_a_whole_number(value: str, count: int) -> None:
    assert parse_retries(value) == count


@pytest.mark.parametrize("value", ["-1", "1_0", "1.5", "", "\u0661", "1000001", "9" * 5000])
def test_retries_that_are_not_a_plain_whole_number_are_refused(value: str) -> None:
    with pytest.raises(UsageError, match=r"^--retries takes "):
        parse_retries(value)

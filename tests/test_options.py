"""Request options are parsed exactly, and bad ones are usage errors."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ostream.errors import ExitCode, UsageError
from ostream.options import (
    load_tools,
    parse_format,
    parse_keep_alive,
    parse_options,
    parse_retries,
    parse_think,
    parse_timeout,
    read_images,
)


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
    assert parse_format("json") == "json"
    assert parse_format(schema)["type"] == "object"
    assert parse_format(f"@{tmp_path / 's.json'}")["properties"] == {"a": {"type": "string"}}


@pytest.mark.parametrize("value", ["yaml", "{bad", "[1]", "@/nonexistent/schema.json", "@"])
def test_bad_format_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError):
        parse_format(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("JSON", "--format takes json, a JSON schema or @file.json; not 'JSON'"),
        ("@", "--format: no file name"),
    ],
)
def test_bad_format_says_what_it_takes(value: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_format(value)
    assert info.value.message == message


def test_empty_image_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(UsageError) as info:
        read_images([str(tmp_path / "empty.png")])
    assert info.value.message == f"--image: {tmp_path / 'empty.png'} is empty"


def test_images_are_base64(tmp_path: Path) -> None:
    data = bytes(range(256))
    (tmp_path / "a.png").write_bytes(data)
    assert read_images([str(tmp_path / "a.png")]) == [base64.b64encode(data).decode()]


def test_unreadable_image_is_a_usage_error_naming_it() -> None:
    with pytest.raises(UsageError) as info:
        read_images(["/nonexistent/cat.png"])
    assert "/nonexistent/cat.png" in info.value.message


def test_tools_file_must_be_a_json_array(tmp_path: Path) -> None:
    good = tmp_path / "tools.json"
    good.write_text('[{"type":"function","function":{"name":"f"}}]')
    assert load_tools(str(good))[0]["function"]["name"] == "f"
    bad = tmp_path / "bad.json"
    bad.write_text('{"type":"function"}')
    with pytest.raises(UsageError):
        load_tools(str(bad))


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

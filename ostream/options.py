"""Request options from the command line: parsed and checked, never sent half-valid."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ostream.errors import UsageError
from ostream.inputs import load_json
from ostream.jsontext import OutOfRange, scrub, strict_json, undecodable

THINK_LEVELS = ("low", "medium", "high", "max")
_NUMBER = r"([0-9]+(\.[0-9]*)?|\.[0-9]+)"  # ASCII digits, no 1_0, no 1e9
_GO_DURATION = re.compile(rf"[-+]?({_NUMBER}(ns|us|µs|μs|ms|s|m|h))+")
_SECONDS = re.compile(rf"[-+]?{_NUMBER}")
# A socket timeout holds up to about 9.2e9 s; more than 31 years is not a limit anyway.
TIMEOUT_MAX = 1_000_000_000
RETRIES_MAX = 1_000_000


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """`-o KEY=VALUE` pairs; VALUE is JSON when it parses as JSON, else a string."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-o takes KEY=VALUE, not {pair!r}")
        if undecodable(pair):
            raise UsageError(f"-o {scrub(key)}: not valid UTF-8")
        try:
            options[key] = strict_json(value)
        except OutOfRange as exc:
            raise UsageError(f"-o {key}: {exc}") from None
        except ValueError:
            options[key] = value
    return options


def parse_think(value: str) -> bool | str:
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in THINK_LEVELS:
        return lowered
    raise UsageError(f"--think takes true, false, {', '.join(THINK_LEVELS)}; not {value!r}")


def parse_keep_alive(value: str) -> str | int | float:
    """A Go duration ("5m", "1h30m") as a string; a plain number as seconds."""
    text = value.strip()
    if _SECONDS.fullmatch(text):
        if len(text) > 24:  # far beyond any duration a server can hold
            raise UsageError(f"--keep-alive: {text[:24]}... is too large")
        return float(text) if "." in text else int(text)
    if _GO_DURATION.fullmatch(text):
        return text
    raise UsageError(f"--keep-alive takes a duration like 5m or 1h30m, or seconds; not {value!r}")


def parse_timeout(value: str) -> float:
    """--timeout: seconds, greater than 0; ASCII digits and an optional fraction, as
    --keep-alive's numbers (no 1_0, no 1e3, no inf)."""
    text = value.strip()
    if not re.fullmatch(_NUMBER, text) or float(text) <= 0:
        raise UsageError(
            f"--timeout takes a number of seconds greater than 0, like 30 or 2.5; not {value!r}"
        )
    seconds = float(text)
    if seconds > TIMEOUT_MAX:
        raise UsageError(f"--timeout takes at most {TIMEOUT_MAX} seconds; not {value!r}")
    return seconds


def parse_retries(value: str) -> int:
    """--retries: a whole number, 0 or more, in ASCII digits."""
    text = value.strip()
    if not re.fullmatch("[0-9]+", text):
        raise UsageError(f"--retries takes a whole number, 0 or more; not {value!r}")
    if len(text.lstrip("0")) > len(str(RETRIES_MAX)) or int(text) > RETRIES_MAX:
        raise UsageError(f"--retries takes at most {RETRIES_MAX}; not {value!r}")
    return int(text)


def parse_format(value: str, environ: Mapping[str, str]) -> Any:
    """`json`, or a JSON schema inline or as @file.json."""
    if value.strip() == "json":
        return "json"
    if not value.lstrip().startswith(("@", "{")):
        raise UsageError(f"--format takes json, a JSON schema or @file.json; not {value!r}")
    schema = load_json(value, "--format", environ)
    if not isinstance(schema, dict):
        raise UsageError("--format takes json or a JSON schema object")
    return schema

"""JSON as ostream reads it: strict (no NaN, no Infinity, no number too large for a
double), lone surrogate escapes made U+FFFD, and one wording for JSON that does not parse."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ostream.errors import UsageError


def refuse_constant(name: str) -> Any:
    """parse_constant for json: NaN, Infinity and -Infinity are not JSON."""
    raise ValueError(f"{name} is not JSON")


class OutOfRange(ValueError):
    """A JSON number too large for a double."""


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise OutOfRange(f"{text} is out of range")
    return number


_DECODER = json.JSONDecoder(parse_constant=refuse_constant, parse_float=_finite)
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def strict_json(text: str) -> Any:
    """json.loads without NaN, Infinity and numbers too large for a double, which are
    not JSON that Ollama (or ostream, sending it on) can take.

    A lone surrogate escape ("\\ud83d", which a broken server or an old ostream may
    have written) becomes U+FFFD, as Ollama's own JSON decoder takes it: the text
    can then be sent as UTF-8.
    """
    value = _DECODER.decode(text)
    return scrub(value) if _SURROGATE_ESCAPE.search(text) else value


def raw_decode(text: str, start: int) -> tuple[Any, int]:
    """The JSON value at `start` in `text` (strict_json's rules) and where it ends."""
    value, end = _DECODER.raw_decode(text, start)
    return (scrub(value) if _SURROGATE_ESCAPE.search(text, start, end) else value), end


def scrub(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [scrub(item) for item in value]
    if isinstance(value, dict):
        return {scrub(key): scrub(item) for key, item in value.items()}
    return value


def undecodable(value: str) -> bool:
    """Whether a command-line value held bytes that are not UTF-8 (Python keeps them as
    lone surrogates)."""
    return _SURROGATE.search(value) is not None


def problem(exc: ValueError, line: int | None = None) -> str:
    """What is wrong with JSON that did not parse, and where: `Expecting value (column 5)`,
    with the line too when it is not `line` (the value's first line; None: the error's)."""
    if not isinstance(exc, json.JSONDecodeError):
        return str(exc)  # NaN, Infinity, a number too large for a double
    if exc.lineno == (exc.lineno if line is None else line):
        return f"{exc.msg} (column {exc.colno})"
    return f"{exc.msg} (line {exc.lineno}, column {exc.colno})"


def invalid_json(where: str, exc: ValueError, line: int | None = None) -> UsageError:
    """`where:LINE: invalid JSON: ...` for JSON that did not parse; `line`: where the value
    starts (None: the error's own line, when it has one)."""
    if line is None and isinstance(exc, json.JSONDecodeError):
        line = exc.lineno
    at = "" if line is None else f":{line}"
    return UsageError(f"{where}{at}: invalid JSON: {problem(exc, line)}")

"""Input from stdin and from files, read in bounded pieces.

One read(2) at a time, so a signal (SIGINT, SIGTERM) is handled between two of
them, whatever the source: `</dev/zero`, a pipe that never ends, a 3 GB file.
No input is held beyond the limit, OSTREAM_MAX_INPUT MiB (default 64): more is
refused (exit 2) after reading at most one byte past it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

from ostream.errors import UsageError
from ostream.jsontext import invalid_json, strict_json, undecodable

DEFAULT_MIB = 64
PIECE = 1 << 16
UTF8_BOM = b"\xef\xbb\xbf"  # dropped from the start of text: never sent, never refused


def limit(environ: Mapping[str, str]) -> int:
    """The most bytes one input may hold."""
    value = environ.get("OSTREAM_MAX_INPUT", "").strip()
    if not value:
        return DEFAULT_MIB << 20
    if not re.fullmatch(r"[0-9]{1,7}", value) or int(value) == 0:
        raise UsageError(f"OSTREAM_MAX_INPUT takes a whole number of MiB, not {value!r}")
    return int(value) << 20


def read_all(read: Callable[[int], bytes], what: str, environ: Mapping[str, str]) -> bytes:
    """Everything `read` gives until it returns b"", refused once it exceeds the limit
    (OSTREAM_MAX_INPUT in `environ`)."""
    most = limit(environ)
    pieces: list[bytes] = []
    total = 0
    while piece := read(min(PIECE, most + 1 - total)):
        total += len(piece)
        if total > most:
            raise UsageError(
                f"{what} is larger than {most >> 20} MiB (OSTREAM_MAX_INPUT raises the limit)"
            )
        pieces.append(piece)
    return b"".join(pieces)


def stdin_bytes(stdin: Any, environ: Mapping[str, str]) -> bytes | None:
    """All of stdin when it is not a terminal; None when it is a terminal or closed."""
    if stdin is None:
        return None
    try:
        if stdin.isatty():
            return None
        binary = getattr(stdin, "buffer", stdin)
        # read1: one read(2) for what is not buffered yet, never a wait for a full piece.
        return read_all(getattr(binary, "read1", binary.read), "stdin", environ)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read stdin: {exc}") from None


def piped_bytes(stdin: Any, option: str, what: str, environ: Mapping[str, str]) -> bytes:
    """stdin for an option given `-` (`-d -`, `--messages -`): it must be piped."""
    if stdin is None or stdin.isatty():
        raise UsageError(f"{option} -: stdin is a terminal or closed; pipe the {what} in")
    return stdin_bytes(stdin, environ) or b""


def file_bytes(path: str, what: str, environ: Mapping[str, str]) -> bytes:
    """The contents of the file `path` names, given for the option `what`."""
    if not path:
        raise UsageError(f"{what}: no file name")
    try:
        with open(path, "rb", buffering=0) as handle:
            return read_all(handle.read, f"{what}: {path}", environ)
    except OSError as exc:
        raise UsageError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None


def text(data: bytes, source: str) -> str:
    """`data` as UTF-8 text without a leading byte order mark; `source` names it in the
    message when it is not UTF-8 (`--history talk.jsonl` → `--history talk.jsonl:3: ...`)."""
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UsageError(f"{source}:{line}: not valid UTF-8 (byte {exc.start})") from None
    return decoded.removeprefix("\ufeff")


def without_bom(data: bytes) -> bytes:
    return data.removeprefix(UTF8_BOM)


def stdin_text(stdin: Any, environ: Mapping[str, str]) -> str | None:
    """stdin as UTF-8 text (a BOM dropped) when it is not a terminal; None when it is,
    or when nothing came."""
    data = stdin_bytes(stdin, environ)
    return text(data, "stdin") or None if data else None


def load_json(value: str, what: str, environ: Mapping[str, str]) -> Any:
    """Inline JSON, or `@path` to a file holding it."""
    if value.startswith("@"):
        where = f"{what} {value[1:]}"
        source = text(file_bytes(value[1:], what, environ), where)
    elif undecodable(value):
        raise UsageError(f"{what}: not valid UTF-8")
    else:
        where, source = what, value
    try:
        return strict_json(source)
    except ValueError as exc:
        raise invalid_json(where, exc) from None


def load_tools(path: str, environ: Mapping[str, str]) -> list[Any]:
    tools = load_json(path if path.startswith("@") else "@" + path, "--tools", environ)
    if not isinstance(tools, list):
        raise UsageError("--tools: the file must hold a JSON array of tool schemas")
    return tools


def read_images(paths: list[str], stdin: Any, environ: Mapping[str, str]) -> list[str]:
    """The images, base64; a path of `-` is the image piped on `stdin` (once only)."""
    if paths.count("-") > 1:
        raise UsageError("--image - can be given only once: stdin holds one image")
    images = []
    for path in paths:
        data = (
            piped_bytes(stdin, "--image", "image", environ)
            if path == "-"
            else file_bytes(path, "--image", environ)
        )
        if not data:
            raise UsageError(f"--image: {'stdin' if path == '-' else path} is empty")
        images.append(base64.b64encode(data).decode("ascii"))
    return images

"""Conversation files: reading JSONL or a JSON array, appending a turn atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from ostream.errors import UsageError
from ostream.ndjson import compact
from ostream.options import read_text, strict_json
from ostream.prompt import read_piped


def parse_messages(text: str, source: str) -> list[dict[str, Any]]:
    """A conversation held as a JSON array or as JSONL, one message object a line."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            messages = strict_json(stripped)
        except ValueError as exc:
            raise UsageError(f"{source}: invalid JSON: {exc}") from None
    else:
        messages = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                messages.append(strict_json(line))
            except ValueError as exc:
                raise UsageError(f"{source}:{number}: invalid JSON: {exc}") from None
    for message in messages:
        if not isinstance(message, dict) or "role" not in message:
            raise UsageError(f"{source}: every message must be an object with a 'role'")
    return messages  # type: ignore[no-any-return]


def read_history(path: Path) -> list[dict[str, Any]]:
    """The messages of a --history file; a missing file is an empty conversation.

    What would stop the turn from being saved is refused now, before the answer
    streams: a missing or unwritable directory (the new file is made there and
    renamed over the old one), a file that is not writable.
    """
    real = os.path.realpath(path)
    directory = os.path.dirname(real)
    if os.path.exists(real) and not os.path.isfile(real):  # /dev/null, a FIFO: not replaced
        raise UsageError(f"--history: {path} is not a regular file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if not os.path.isdir(directory):
            raise UsageError(f"--history: no directory {directory}") from None
        data = None
    except OSError as exc:
        raise UsageError(f"--history: cannot read {path}: {exc.strerror or exc}") from None
    if data is not None and not os.access(real, os.W_OK):
        raise UsageError(f"--history: {path} is not writable")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"--history: cannot create files in {directory}")
    if data is None:
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--history: {path} is not valid UTF-8") from None
    if text.lstrip().startswith("["):
        raise UsageError(f"--history: {path} is a JSON array; history files are JSONL")
    return parse_messages(text, str(path))


def load_conversation(messages: str | None, history: Path | None, stdin: Any) -> list[Any]:
    """The conversation sent before the new message: --messages FILE|-, or --history."""
    if messages == "-":
        return parse_messages(read_piped(stdin, "--messages", "conversation") or "", "--messages -")
    if messages is not None:
        return parse_messages(read_text(messages, "--messages"), messages)
    if history is not None:
        return read_history(history)
    return []


def user_turn(text: str | None, images: list[str]) -> list[dict[str, Any]]:
    """The new user message (none without text), carrying the images."""
    if text is None:
        if images:
            raise UsageError("--image needs a message to attach to")
        return []
    user: dict[str, Any] = {"role": "user", "content": text}
    if images:
        user["images"] = images
    return [user]


def append_turn(path: Path, messages: list[dict[str, Any]]) -> None:
    """Append `messages` as JSONL lines, all or nothing.

    The new file is written beside the old one and renamed over it, so a crash
    or a signal at any moment leaves either the old file or the new one.
    """
    path = Path(os.path.realpath(path))  # through a symlink: update the file it names
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        old = b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    new = b"".join(compact(m) + b"\n" for m in messages)
    directory = path.parent
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(old + new)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            status = path.stat()
        except FileNotFoundError:
            os.chmod(temp, 0o666 & ~_umask())
        else:
            os.chmod(temp, status.st_mode & 0o7777)
            if (status.st_uid, status.st_gid) != (os.getuid(), os.getgid()):
                with contextlib.suppress(PermissionError):  # root updating someone's file
                    os.chown(temp, status.st_uid, status.st_gid)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

"""The --history file: read before the request, the new turn saved after it.

What would stop the turn from being saved is refused before anything is sent.
A turn is saved by writing the whole file anew beside the old one and renaming
it over it (a crash leaves the old file or the new one); if that cannot be done
(a disk with room for the new lines but not for a second copy), the new lines
are appended instead. Turns of concurrent runs on one file are all kept: the
re-read and the replace happen under an advisory lock (flock) on the file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ostream.conversation import parse_messages
from ostream.errors import OstreamError, UsageError
from ostream.inputs import file_bytes
from ostream.jsontext import raw_decode, scrub
from ostream.ndjson import compact


def read_history(
    path: Path, environ: Mapping[str, str], what: str = "--history"
) -> list[dict[str, Any]]:
    """The messages of a --history file; a missing file is an empty conversation.
    `what` names the option or command in the messages (/save, /load)."""
    real = os.path.realpath(path)
    directory = os.path.dirname(real)
    try:
        dir_status = os.stat(directory)
    except OSError:
        raise UsageError(f"{what}: no directory {directory}") from None
    try:
        status: os.stat_result | None = os.stat(real)
    except FileNotFoundError:
        status = None
    except OSError as exc:
        raise UsageError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
    if status is not None:
        if not stat.S_ISREG(status.st_mode):  # /dev/null, a FIFO: not replaced
            raise UsageError(f"{what}: {path} is not a regular file")
        if not os.access(real, os.W_OK):
            raise UsageError(f"{what}: {path} is not writable")
        if not replaceable(status, dir_status, os.geteuid()):
            raise UsageError(
                f"{what}: {path} belongs to another user in the sticky directory"
                f" {directory}, so it cannot be replaced"
            )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"{what}: cannot create files in {directory}")
    if status is None:
        return []
    data = complete_lines(file_bytes(str(path), what, environ))
    return parse_messages(data, f"{what} {path}", array=False)


def replaceable(file: os.stat_result, directory: os.stat_result, euid: int) -> bool:
    """Whether a rename over `file` is allowed: in a sticky directory (/tmp) only the
    owner of the file or of the directory (or root) may replace it."""
    if not directory.st_mode & stat.S_ISVTX:
        return True
    return euid == 0 or euid in (file.st_uid, directory.st_uid)


def complete_lines(data: bytes) -> bytes:
    """`data` ending in a newline. A last line that a crash cut short (it begins like
    one of ostream's lines, `{`, but is not JSON) is dropped: the next save repairs
    the file. A last line written by hand without a newline is kept."""
    if not data or data.endswith(b"\n"):
        return data
    start = data.rfind(b"\n") + 1
    if data[start:].lstrip().startswith(b"{"):
        try:
            raw_decode(data[start:].decode("utf-8").strip(), 0)
        except ValueError:  # UnicodeDecodeError included
            return data[:start]
    return data + b"\n"


def save_turn(
    path: Path, messages: list[dict[str, Any]], *, replacing: list[dict[str, Any]] | None = None
) -> None:
    """Append `messages` to the history file as JSONL lines, or say why it failed.

    `replacing`: messages the file ends with that `messages` take the place of (a
    turn asked again, a reply continued); if it no longer ends with them (edited,
    or another run appended since), `messages` are appended."""
    _store(path, messages, replacing=replacing or [])


def save_conversation(path: Path, messages: list[dict[str, Any]], what: str = "/save") -> None:
    """Make the history file hold `messages`, and only them (`chat -i`'s /save)."""
    _store(path, messages, whole=True, what=what)


def _lines(messages: list[dict[str, Any]]) -> bytes:
    # What was shown is stored: a lone surrogate (from a \\ud83d escape) as U+FFFD.
    return b"".join(compact(scrub(message)) + b"\n" for message in messages)


def _store(
    path: Path,
    messages: list[dict[str, Any]],
    *,
    replacing: list[dict[str, Any]] | None = None,
    whole: bool = False,
    what: str = "--history",
) -> None:
    real = Path(os.path.realpath(path))  # through a symlink: update the file it names
    new = _lines(messages)
    try:
        fd, created = _open_locked(real)
    except OSError as exc:
        raise _save_error(path, exc, what) from None
    try:
        old = _read_fd(fd)
        kept = b"" if whole else complete_lines(old)
        tail = _lines(replacing or [])
        if tail and kept.endswith(tail) and kept[: -len(tail)][-1:] in (b"", b"\n"):
            kept = kept[: -len(tail)]
        try:
            _replace(real, kept + new)
        except OSError:
            if kept != complete_lines(old):  # only a plain append has a fallback
                raise
            _append(real, fd, old, new)
    except OSError as exc:
        if created and not os.fstat(fd).st_size:
            with contextlib.suppress(OSError):
                real.unlink()
        raise _save_error(path, exc, what) from None
    finally:
        os.close(fd)


def replace_conversation(path: Path, messages: list[dict[str, Any]]) -> None:
    """The file `path` made to hold just `messages`, replaced whole under the lock."""
    real = Path(os.path.realpath(path))
    fd, _ = _open_locked(real)
    try:
        _replace(real, b"".join(compact(scrub(message)) + b"\n" for message in messages))
    finally:
        os.close(fd)


def _save_error(path: Path, exc: OSError, what: str) -> OstreamError:
    """One clean line, exit 1: no errno, no temporary file names."""
    reason = exc.strerror or str(exc)
    saved = "the turn" if what == "--history" else "the conversation"
    return OstreamError(f"{what}: cannot save {saved} in {path}: {reason}")


def _open_locked(real: Path) -> tuple[int, bool]:
    """The history file, open and locked (created empty when missing); True if created.

    A save replaces the file by a new one, so a lock taken on the old one while
    it was being replaced is given up and taken again on the new one.
    """
    while True:
        created = False
        try:
            fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            try:
                fd = os.open(real, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            except FileExistsError:
                continue
            created = True
        try:
            with contextlib.suppress(OSError):  # no locks on this file system: go on without
                fcntl.flock(fd, fcntl.LOCK_EX)
            opened, current = os.fstat(fd), os.stat(real)
        except FileNotFoundError:
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        if (opened.st_dev, opened.st_ino) == (current.st_dev, current.st_ino):
            return fd, created
        os.close(fd)


def _read_fd(fd: int) -> bytes:
    pieces = []
    while piece := os.read(fd, 1 << 16):
        pieces.append(piece)
    return b"".join(pieces)


def _replace(real: Path, data: bytes) -> None:
    """Write `data` beside `real` and rename it over it, keeping mode and owner."""
    status = real.stat()
    fd, temp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, stat.S_IMODE(status.st_mode))
        if (status.st_uid, status.st_gid) != (os.geteuid(), os.getegid()):
            with contextlib.suppress(PermissionError):  # root updating someone's file
                os.chown(temp, status.st_uid, status.st_gid)
        os.replace(temp, real)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _append(real: Path, locked: int, old: bytes, new: bytes) -> None:
    """Add `new` at the end of the file, flushed to the disk; on failure the file is
    cut back to what it was. A cut-short last line is dropped first."""
    fd = os.open(real, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_ino != os.fstat(locked).st_ino:  # replaced behind our lock
            raise OSError(errno.ESTALE, "the file was replaced while it was being saved")
        kept = complete_lines(old)
        if len(kept) < len(old):
            os.ftruncate(fd, len(kept))
        elif kept != old:
            new = b"\n" + new
        try:
            view = memoryview(new)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, len(kept))
            raise
    finally:
        os.close(fd)

"""`--output FILE`: the answer goes to a new file beside FILE, renamed over it only
when the answer completed; a failed or interrupted run leaves FILE as it was."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from ostream.errors import OutputError, UsageError
from ostream.output import Streams


@contextlib.contextmanager
def atomic_output(name: str, streams: Streams) -> Iterator[Streams]:
    """`streams` with stdout going to FILE's stand-in; FILE is replaced by it when the
    block ends normally. An existing FILE that is not a regular file (/dev/null, a FIFO)
    is written to directly."""
    if not name:
        raise UsageError("--output: the file name is empty")
    real = Path(os.path.realpath(name))  # through a symlink: replace the file it names
    try:
        status: os.stat_result | None = real.stat()
    except FileNotFoundError:
        status = None
    except OSError as exc:
        raise UsageError(f"--output {name}: {exc.strerror or exc}") from None
    if status is not None and not stat.S_ISREG(status.st_mode):
        with _opened(name, lambda: os.open(real, os.O_WRONLY | os.O_CLOEXEC)) as handle:
            yield replace(streams, stdout=handle, stdout_tty=False, process_fds=False)
        return
    temp = real.parent / f".{real.name}.{secrets.token_hex(4)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        with _opened(name, lambda: os.open(temp, flags, 0o666)) as handle:  # umask applies
            yield replace(
                streams,
                stdout=handle,
                stdout_tty=False,
                stdout_never_blocks=True,
                process_fds=False,
            )
            try:
                handle.flush()
                os.fsync(handle.fileno())
                if status is not None:
                    os.chmod(temp, stat.S_IMODE(status.st_mode))
                os.replace(temp, real)
            except OSError as exc:
                raise OutputError(f"--output {name}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


@contextlib.contextmanager
def _opened(name: str, opener: Callable[[], int]) -> Iterator[BinaryIO]:
    """The file `opener` opens, as a binary stream; failing to open it is a usage error
    (nothing has been sent yet), failing to write it says which file."""
    try:
        fd = opener()
    except OSError as exc:
        raise UsageError(f"--output {name}: cannot write: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb", buffering=0) as handle:
        try:
            yield handle
        except OutputError as exc:
            reason = exc.message.removeprefix("cannot write to stdout: ")
            raise OutputError(f"--output {name}: {reason}") from None

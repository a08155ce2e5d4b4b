"""Result lines to stdout or an --output file: each line whole, in one write(2).

On an O_APPEND descriptor one write(2) of a whole line means a crash leaves at
most a torn last line (which resume.py cuts), never one line inside another. A
regular file is fsync'ed every `sync_lines` lines or `sync_seconds` seconds,
whichever comes first, and at the end, so a power cut loses little.
"""

from __future__ import annotations

import fcntl
import os
import stat
import time
from collections.abc import Callable

from ostream.batch.resume import Resume, scan
from ostream.errors import UsageError

SYNC_LINES = 1000
SYNC_SECONDS = 1.0


class ResultWriter:
    """Writes whole lines to `fd`; fsync only where it means something (a regular file)."""

    def __init__(
        self,
        fd: int,
        *,
        owns_fd: bool = False,
        sync_lines: int = SYNC_LINES,
        sync_seconds: float = SYNC_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fd = fd
        self._owns_fd = owns_fd
        self._regular = stat.S_ISREG(os.fstat(fd).st_mode)
        self._sync_lines = sync_lines
        self._sync_seconds = sync_seconds
        self._clock = clock
        self._unsynced = 0
        self._synced_at = clock()
        self.lines = 0
        self.created: str | None = None  # the path, when open_output created the file

    def write(self, line: bytes) -> None:
        """One whole line (newline included) in one write(2). A short write (a full
        disk, a signal during a write to a pipe) is finished by more writes; an
        OSError (EPIPE included) is the caller's to map to an exit code."""
        written = os.write(self.fd, line)
        if written < len(line):
            view = memoryview(line)
            while written < len(line):
                written += os.write(self.fd, view[written:])
        self.lines += 1
        self._unsynced += 1
        if self._regular and (
            self._unsynced >= self._sync_lines
            or self._clock() - self._synced_at >= self._sync_seconds
        ):
            self.sync()

    def sync(self) -> None:
        """fsync what was written since the last one (a no-op off a regular file)."""
        if self._regular and self._unsynced:
            os.fsync(self.fd)
        self._unsynced = 0
        self._synced_at = self._clock()

    def discard(self) -> None:
        """Remove the file when open_output created it and no line was written to it
        (a run that never got to run: no server, a bad INPUT); while still open, so
        still locked, and only if the path is still this file."""
        if self.created is None or self.lines:
            return
        try:
            here, there = os.stat(self.created), os.fstat(self.fd)
            if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
                os.unlink(self.created)
        except OSError:
            pass  # gone or not ours to remove: nothing to tidy
        self.created = None

    def close(self) -> None:
        """The final fsync, and close the descriptor when it was opened here."""
        try:
            self.sync()
        finally:
            if self._owns_fd:
                os.close(self.fd)


def open_output(
    path: str, *, sync_lines: int = SYNC_LINES, sync_seconds: float = SYNC_SECONDS
) -> tuple[ResultWriter, Resume]:
    """Open --output FILE for appending (created if missing) and read what it holds:
    a torn last line is repaired first, the ids already successful are in
    `Resume.done`. Anything but a regular file (a FIFO, /dev/stdout) is only
    appended to. An unopenable file, or one another run is writing (an
    exclusive flock, held until close), is a usage error (exit 2): two runs
    appending to one file would each take the other's line in progress for a
    torn one. A file created here is removed again by ResultWriter.discard when the
    run fails before writing to it."""
    flags = os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
    created = True
    try:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # (or a dangling symlink, created through as before)
            created = False
            fd = os.open(path, flags | os.O_CREAT, 0o666)
    except OSError as exc:
        raise UsageError(f"--output: cannot open {path}: {exc.strerror or exc}") from None
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
        if regular:
            _lock(fd, path)
        resume = scan(fd) if regular else Resume()
        writer = ResultWriter(fd, owns_fd=True, sync_lines=sync_lines, sync_seconds=sync_seconds)
        writer.created = path if created else None
    except BaseException:
        os.close(fd)
        raise
    return writer, resume


def _lock(fd: int, path: str) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UsageError(f"--output: {path} is being written by another run") from None
    except OSError:
        pass  # a file system without locks: go on unguarded

"""Signals become exceptions that unwind the stack, closing the connection on the way.

SIGINT raises KeyboardInterrupt (Python's own handler), SIGTERM Stop(143), and a pipe
on stdout whose reader goes away Stop(141), even while nothing is being written.
"""

from __future__ import annotations

import os
import select
import signal
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from ostream.errors import ExitCode, Stop

# Sent by the reader watch to the main thread; any other sender gets the default action.
WAKE = signal.SIGUSR1


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Stop(ExitCode.TERMINATED)


@contextmanager
def cancellable() -> Iterator[None]:
    """Within: SIGTERM raises Stop(143); SIGINT raises KeyboardInterrupt as Python does.

    A signal the caller chose to ignore (SIG_IGN, e.g. under nohup) stays ignored:
    Python itself leaves an ignored SIGINT alone, and SIGTERM is only taken
    over from its default action.
    """
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        if previous is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def reader_watch(stream: Any) -> Iterator[None]:
    """Within: if `stream` is a pipe and its reader goes away, raise Stop(141) in the
    main thread at once, also while it waits for the server (a model loading).
    Meant for the request and the stream only: what follows a complete answer (the
    final newline, saving --history) must not be cut short by a reader that is done.

    Without this, `ostream ... | jq 'bad filter'` would hold the connection, and the
    GPU, until the first token gave it something to fail writing. A thread waits in
    poll() for the pipe's error state and signals the main thread.
    """
    fd = _pipe_fd(stream)
    if (
        fd is None
        or threading.current_thread() is not threading.main_thread()
        or signal.getsignal(WAKE) is not signal.SIG_DFL
    ):
        yield
        return
    gone = threading.Event()
    closing = threading.Event()
    stop_read, stop_write = os.pipe()
    main = threading.get_ident()

    def on_wake(signum: int, frame: FrameType | None) -> None:
        if closing.is_set():  # the watched part is over: nothing left to stop
            return
        if gone.is_set():
            raise Stop(ExitCode.BROKEN_PIPE)
        signal.signal(WAKE, signal.SIG_DFL)  # not from the watch: what it would have done
        os.kill(os.getpid(), WAKE)

    def watch() -> None:
        poller = select.poll()
        poller.register(fd, 0)  # no events asked: only POLLERR (reader gone) or POLLHUP
        poller.register(stop_read, select.POLLIN)
        if any(ready == fd for ready, _ in poller.poll()):
            gone.set()
            signal.pthread_kill(main, WAKE)

    signal.signal(WAKE, on_wake)
    # Started with every signal blocked, so SIGINT and SIGTERM always reach the main
    # thread and interrupt what it waits in, never this one.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        thread = threading.Thread(target=watch, name="ostream-reader-watch", daemon=True)
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        yield
    finally:
        closing.set()  # first: a wake from now on is ignored, so this cleanup runs whole
        try:
            os.write(stop_write, b"x")
            thread.join()
        finally:
            os.close(stop_read)
            os.close(stop_write)
            # A wake sent before the join returned has been delivered by now; once the
            # Python-level handler is SIG_DFL, CPython skips it.
            signal.signal(WAKE, signal.SIG_DFL)


def _pipe_fd(stream: Any) -> int | None:
    try:
        fd = int(stream.fileno())
        return fd if stat.S_ISFIFO(os.fstat(fd).st_mode) else None
    except (AttributeError, ValueError, OSError):
        return None

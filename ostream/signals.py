"""Signals become exceptions that unwind the stack, closing the connection on the way,
and the process then ends by the signal itself.

While a command runs, SIGINT raises KeyboardInterrupt (Python's own handler), SIGTERM
Stop(143), and a pipe on stdout whose reader goes away Stop(141), even while nothing
is being written. Outside a command (start-up, parsing the command line, the exit)
SIGINT and SIGTERM have their default action: there is nothing to clean up.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, NoReturn

from ostream.errors import ExitCode, Stop

# Sent by the reader watch to the main thread; any other sender gets the default action.
WAKE = signal.SIGUSR1


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Stop(ExitCode.TERMINATED)


@contextmanager
def cancellable() -> Iterator[None]:
    """Within: SIGINT raises KeyboardInterrupt, SIGTERM Stop(143).

    Only a signal with its default action is taken over, and given it back after: a
    signal the caller chose to ignore (SIG_IGN, e.g. SIGINT under nohup) stays
    ignored, and a handler already in place (Python's own, in-process) is kept.
    """
    taken = [
        (signum, handler)
        for signum, handler in (
            (signal.SIGINT, signal.default_int_handler),
            (signal.SIGTERM, _terminate),
        )
        if signal.getsignal(signum) is signal.SIG_DFL
    ]
    for signum, handler in taken:
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, _ in taken:
            signal.signal(signum, signal.SIG_DFL)


# How a run that a signal ended ends the process: by that signal.
_ENDING_SIGNAL: dict[int, signal.Signals] = {
    ExitCode.INTERRUPTED: signal.SIGINT,
    ExitCode.TERMINATED: signal.SIGTERM,
}


def exit_process(code: int) -> NoReturn:
    """End the process with exit status `code`; 130 and 143 by SIGINT and SIGTERM
    themselves (the connection is closed by now, what was written is flushed).

    A parent then sees death by the signal, not an exit that handled it: a shell
    running ostream in a loop or script stops at a Ctrl-C, as it does for curl or
    sleep (bash goes on after a child that *exits* 130). `$?` is 130 or 143 either way.
    """
    signum = _ENDING_SIGNAL.get(code)
    if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # closed, or a reader gone: nothing to keep
                if stream is not None:
                    stream.flush()
        signal.signal(signum, signal.SIG_DFL)
        # raise(), not kill(): delivered to this thread before it returns.
        signal.raise_signal(signum)
    sys.exit(code)  # the signal is blocked (then it could not have been what ended the run)


def quiet_unraisable() -> None:
    """Never print the exceptions a signal raises where Python cannot propagate them.

    A signal's handler runs at whatever bytecode the main thread is at, which may be a
    finaliser (a generator or socket collected while the run unwinds): there Python
    reports the exception as "Exception ignored in ..." with a traceback. The run ends
    by the same cause anyway (the broken pipe, the signal that is already unwinding
    it), so these are dropped; anything else goes to the default hook.
    """
    default = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, (Stop, KeyboardInterrupt, BrokenPipeError)):
            default(unraisable)

    sys.unraisablehook = hook


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

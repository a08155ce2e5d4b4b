"""SIGINT and SIGTERM become exceptions that unwind the stack, closing the connection."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from ostream.errors import ExitCode, Stop


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

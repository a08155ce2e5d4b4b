"""Standard streams whose reader has gone: point the fd at /dev/null and carry on."""

from __future__ import annotations

import os


def silence(fd: int) -> None:
    """Make `fd` a /dev/null, so later writes and the exit-time flush neither fail
    (EPIPE) nor block; what was meant for it is lost, which is all it can be."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except OSError:
        pass

"""Text from the command line, read as UTF-8 whatever the locale.

Python decodes argv by the locale: under a Latin-1 locale the UTF-8 bytes of `Café`
become `CafÃ©`, and bytes the locale cannot decode become lone surrogates. ostream
reads its input as UTF-8 everywhere (stdin, files), so text arguments are too: their
bytes are recovered as the OS gave them (os.fsencode undoes Python's decoding) and
read as UTF-8; bytes that are not UTF-8 are refused. File names are not text here:
they stay as Python decoded them, so they name the same files.
"""

from __future__ import annotations

import os

from ostream.errors import UsageError


def argument_text(value: str, what: str) -> str:
    """`value`, an argument, as the UTF-8 text its bytes spell; `what` names it."""
    try:
        data = os.fsencode(value)
    except UnicodeEncodeError:  # not from argv (a caller's own text): already text
        return value
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"{what} is not valid UTF-8 (arguments are read as UTF-8 whatever the locale)"
        ) from None

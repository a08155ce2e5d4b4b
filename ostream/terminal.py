"""Making text safe to show on a terminal."""

from __future__ import annotations

import re

# C0 controls except \t and \n, DEL, and the C1 controls: shown as ^X, ^? and <U+0080>.
_VISIBLE: dict[int, str] = {c: "^" + chr(c + 64) for c in range(0x20) if c not in (9, 10)}
_VISIBLE[0x7F] = "^?"
_VISIBLE.update({c: f"<U+{c:04X}>" for c in range(0x80, 0xA0)})


def visible(text: str) -> str:
    """`text` with every control character that could drive a terminal made visible."""
    return text.translate(_VISIBLE)


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible_bytes(data: bytes) -> bytes:
    """A server's bytes made safe for a terminal: control characters shown as `visible`
    shows them, except the CR of a CRLF line end; bytes that are not UTF-8 as U+FFFD.

    JSON text holds no raw C0 controls (its strings escape them), so a JSON line
    comes out unchanged, whatever the Content-Type said, and any other line, such as
    a JSON-labelled body that is not JSON, is made safe.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
    else:
        if not _CONTROL.search(text.replace("\r\n", "\n")):
            return data
    return "\r\n".join(visible(part) for part in text.split("\r\n")).encode("utf-8")

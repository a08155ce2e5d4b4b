"""Making text safe to show on a terminal."""

from __future__ import annotations

# C0 controls except \t and \n, DEL, and the C1 controls: shown as ^X, ^? and <U+0080>.
_VISIBLE: dict[int, str] = {c: "^" + chr(c + 64) for c in range(0x20) if c not in (9, 10)}
_VISIBLE[0x7F] = "^?"
_VISIBLE.update({c: f"<U+{c:04X}>" for c in range(0x80, 0xA0)})


def visible(text: str) -> str:
    """`text` with every control character that could drive a terminal made visible."""
    return text.translate(_VISIBLE)

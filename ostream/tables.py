"""The fleet as a person reads it: aligned tables of models and loaded models.

Pure functions from fleet records to lines of text; the caller writes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TypeVar

from ostream.fleet import Answer, LoadedModel, Model
from ostream.terminal import visible

GAP = "  "
ELLIPSIS = "…"
FOREVER_DAYS = 365 * 100  # keep_alive < 0 sets an expiry centuries away

_STAMP = re.compile(
    r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?", re.IGNORECASE
)

# A row is its cells; a note row is (host, text): the text spans the other columns.
Row = tuple[str, ...]
T = TypeVar("T")


def human_size(size: int) -> str:
    """Bytes in decimal units, as `ollama list` shows them: "4.9 GB", "274 MB"."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            break
        value /= 1000
    if unit == "B":
        return f"{size} B"
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def parse_time(stamp: str) -> datetime | None:
    """An RFC 3339 time as Ollama writes it (nanoseconds, any offset), or None."""
    match = _STAMP.fullmatch(stamp.strip())
    if match is None:
        return None
    day, clock, fraction, offset = match.groups()
    offset = (offset or "Z").upper().replace("Z", "+00:00")
    if ":" not in offset:
        offset = offset[:3] + ":" + offset[3:]
    micro = f".{(fraction or '0')[:6]:0<6}"
    try:
        return datetime.fromisoformat(f"{day}T{clock}{micro}{offset}")
    except ValueError:
        return None


def _span(seconds: float) -> str:
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = int(seconds // length)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = int(seconds)
    return f"{count} second{'s' if count != 1 else ''}"


def ago(stamp: str, now: datetime) -> str:
    """ "3 days ago", from an RFC 3339 time; the text itself if it cannot be read."""
    then = parse_time(stamp)
    if then is None:
        return stamp or "-"
    seconds = (now - then).total_seconds()
    return "just now" if seconds < 1 else f"{_span(seconds)} ago"


def until(stamp: str, now: datetime) -> str:
    """ "4 minutes from now" (when a loaded model will be unloaded), "forever", "now"."""
    then = parse_time(stamp)
    if then is None:
        return stamp or "-"
    seconds = (then - now).total_seconds()
    if seconds >= FOREVER_DAYS * 86400:
        return "forever"
    return "now" if seconds < 1 else f"{_span(seconds)} from now"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


def render(
    header: Row, rows: Sequence[Row], *, width: int | None, right: frozenset[int], shrink: int
) -> list[str]:
    """Aligned columns two spaces apart; the `right` ones right-aligned. With a `width`,
    the `shrink` column (then the first) is cut with "…" until each line fits."""
    full = [header, *(row for row in rows if len(row) == len(header))]
    widths = [max(len(row[i]) for row in full) for i in range(len(header))]
    widths[0] = max(len(row[0]) for row in [header, *rows])  # notes name their host too
    if width is not None:
        for column in (shrink, 0):
            over = sum(widths) + len(GAP) * (len(widths) - 1) - width
            if over > 0:
                widths[column] = max(widths[column] - over, len(header[column]), 4)
    lines = []
    for row in [header, *rows]:
        if len(row) != len(header):  # a note: the host, then text across the rest
            cells = [_fit(row[0], widths[0]).ljust(widths[0]), row[1]]
        else:
            cells = [
                _fit(cell, w).rjust(w) if i in right else _fit(cell, w).ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ]
        line = GAP.join(cells).rstrip()
        lines.append(_fit(line, width) if width is not None else line)
    return lines


def _rows(answers: Sequence[Answer[T]], empty: str, cells: Callable[[T], Row]) -> list[Row]:
    """A row per record; a host that failed, or has none, a note saying so."""
    rows: list[Row] = []
    for answer in answers:
        if answer.failure is not None:
            rows.append((answer.host.label, answer.failure.message or answer.failure.kind))
        elif not answer.items:
            rows.append((answer.host.label, empty))
        rows.extend(cells(item) for item in answer.items)
    return rows


def models_table(
    answers: Sequence[Answer[Model]], *, now: datetime, width: int | None, safe: bool
) -> list[str]:
    """HOST NAME SIZE MODIFIED, a row per model; a host that failed or has none, a note."""
    rows = _rows(
        answers,
        "(no models)",
        lambda m: (m.host.label, m.name, human_size(m.size), ago(m.modified_at, now)),
    )
    return _lines(("HOST", "NAME", "SIZE", "MODIFIED"), rows, width, safe, {2})


def loaded_table(
    answers: Sequence[Answer[LoadedModel]], *, now: datetime, width: int | None, safe: bool
) -> list[str]:
    """HOST NAME SIZE VRAM UNTIL, a row per loaded model; a host that failed or has none
    loaded, a note. VRAM is the share of the model in GPU memory (the rest is in RAM)."""
    rows = _rows(
        answers,
        "(none loaded)",
        lambda m: (
            m.host.label,
            m.name,
            human_size(m.size),
            f"{round(m.vram_share * 100)}%",
            until(m.expires_at, now),
        ),
    )
    return _lines(("HOST", "NAME", "SIZE", "VRAM", "UNTIL"), rows, width, safe, {2, 3})


def _lines(
    header: Row, rows: list[Row], width: int | None, safe: bool, right: set[int]
) -> list[str]:
    if safe:  # what a server sends must not drive the terminal
        rows = [tuple(visible(cell) for cell in row) for row in rows]
    return render(header, rows, width=width, right=frozenset(right), shrink=1)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)

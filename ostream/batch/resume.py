"""What an existing --output file already holds, and the repair of a torn last line.

Read line by line, never whole. Only the hashes of successful custom_ids stay
(IdSet): a rerun skips those jobs and runs the others, failed ones included.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ostream.batch.ids import IdSet, id_hash
from ostream.batch.results import is_success
from ostream.ndjson import json_object


@dataclass
class Resume:
    """What scan found."""

    done: IdSet = field(default_factory=IdSet)  # hashes of custom_ids with a success line
    results: int = 0  # result lines read, failed ones included
    foreign: int = 0  # other lines (not JSON, not results): left as they are
    cut: int = 0  # bytes of a torn last line removed
    completed: bool = False  # a whole last result line lacked only its newline: added


def scan(fd: int, *, repair: bool = True) -> Resume:
    """Read the file at `fd` (opened O_RDWR | O_APPEND) from its start; repair its end
    (not with `repair` False: --dry-run reads the file, never writes it).

    A crash mid-write leaves a last line without its newline: if it is still a
    whole result line (only the newline was lost) the newline is added, else it
    is cut. A last line that is not a JSON object is cut too. Earlier lines that
    are not result lines are counted in `foreign` and left alone.
    """
    resume = Resume()
    offset = start = 0
    line = b""
    record: dict[str, Any] | None = None
    with os.fdopen(os.dup(fd), "rb") as file:
        file.seek(0)
        for line in file:
            start, offset = offset, offset + len(line)
            if not line.strip():
                record = None
                continue
            record = json_object(line)
            if _is_result(record):
                resume.results += 1
                if is_success(record):
                    resume.done.add(id_hash(record["custom_id"]))  # type: ignore[index]
            else:
                resume.foreign += 1
    torn = not line.endswith(b"\n") and bool(line)
    if not repair:
        return resume
    if torn and _is_result(record):
        os.write(fd, b"\n")
        resume.completed = True
    elif torn or (line.strip() and record is None):
        resume.cut = offset - start
        resume.foreign -= 1 if line.strip() else 0
        os.ftruncate(fd, start)
    else:
        return resume
    os.fsync(fd)
    return resume


def _is_result(record: dict[str, Any] | None) -> bool:
    return record is not None and "custom_id" in record and "error" in record

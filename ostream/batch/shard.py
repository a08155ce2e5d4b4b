"""`--shard I/N`: which jobs this process runs, by a stable hash of their custom_id."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ostream.batch.ids import id_hash
from ostream.errors import UsageError

_SHARD = re.compile(r"([0-9]+)/([0-9]+)")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: the jobs whose id_hash(custom_id) % count is index.

    id_hash is the first 8 bytes of SHA-256, so any tool can place an id:
    `printf %s ID | sha256sum | cut -c1-16`, as a hexadecimal number, modulo N.
    """

    index: int
    count: int

    def owns(self, custom_id: str) -> bool:
        return self.owns_hash(id_hash(custom_id))

    def owns_hash(self, key: int) -> bool:
        return key % self.count == self.index


def parse_shard(value: str) -> Shard:
    """`I/N` with 0 <= I < N; anything else is a usage error (exit 2) saying so."""
    match = _SHARD.fullmatch(value.strip())
    if match is None:
        raise UsageError(f"--shard takes I/N, like 0/4 (the first of four); not {value!r}")
    index, count = int(match[1]), int(match[2])
    if count == 0:
        raise UsageError(f"--shard {value.strip()}: N must be at least 1")
    if index >= count:
        raise UsageError(
            f"--shard {value.strip()}: I counts from 0, so it must be below N ({count})"
        )
    return Shard(index, count)

"""Job ids as 64-bit hashes, and a set of them that costs 8 bytes a slot.

A run remembers every `custom_id` it has read (for duplicates) and every one that
already succeeded in `--output` (for resume). A Python set of a million str or
int objects costs 60-100 MB; this set keeps only the hashes, in one flat array.
"""

from __future__ import annotations

import hashlib
from array import array

_FIRST_BITS = 10
_MAX_LOAD = (2, 3)  # grow past 2/3 full: linear probing stays short


def id_hash(custom_id: str) -> int:
    """The first 8 bytes of SHA-256 of the id's UTF-8, as a big-endian number.

    Stable across runs, machines and Python versions (unlike hash()), so
    `--shard` and resume agree everywhere; never 0, which marks a free slot.
    Two different ids share a hash with odds of about n²/2⁶⁵ (3e-8 for a
    million ids).
    """
    digest = hashlib.sha256(custom_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") or 1


class IdSet:
    """A set of nonzero 64-bit hashes (from id_hash), open addressing in an array.

    The slot is taken from a key's top bits, so keys must be evenly spread
    there, as hashes are; `--shard` uses the low bits (id_hash % N), so one
    shard's keys still spread over the whole table.
    """

    __slots__ = ("_bits", "_count", "_slots")

    def __init__(self) -> None:
        self._bits = _FIRST_BITS
        self._slots = array("Q", [0]) * (1 << _FIRST_BITS)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int) and key != 0 and self._slots[self._slot(key)] == key

    def add(self, key: int) -> bool:
        """Add `key`; False when it was there already."""
        i = self._slot(key)
        if self._slots[i] == key:
            return False
        self._slots[i] = key
        self._count += 1
        if self._count * _MAX_LOAD[1] > len(self._slots) * _MAX_LOAD[0]:
            self._grow()
        return True

    def _slot(self, key: int) -> int:
        """Where `key` is, or the free slot where it would go."""
        slots = self._slots
        mask = len(slots) - 1
        i = key >> (64 - self._bits)
        while True:
            found = slots[i]
            if found == key or found == 0:
                return i
            i = (i + 1) & mask

    @property
    def nbytes(self) -> int:
        """The memory the table holds."""
        return len(self._slots) * self._slots.itemsize

    def _grow(self) -> None:
        old = self._slots
        self._bits += 1
        slots = self._slots = array("Q", [0]) * (1 << self._bits)  # no temporary bytes copy
        mask = len(slots) - 1
        shift = 64 - self._bits
        for key in old:
            if key:
                i = key >> shift
                while slots[i]:
                    i = (i + 1) & mask
                slots[i] = key

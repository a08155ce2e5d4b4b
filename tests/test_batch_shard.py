"""batch --shard I/N and the stable hash of custom_id behind it (and behind resume)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from ostream.batch.ids import IdSet, id_hash
from ostream.batch.shard import Shard, parse_shard
from ostream.errors import ExitCode, UsageError
from tests.proc import ROOT


@pytest.mark.parametrize(
    ("text", "shard"), [("0/1", Shard(0, 1)), ("2/4", Shard(2, 4)), (" 9/10 ", Shard(9, 10))]
)
def test_shard_takes_i_of_n(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("4/4", "I counts from 0"),
        ("5/4", "below N"),
        ("0/0", "N must be at least 1"),
        ("1", "takes I/N"),
        ("-1/4", "takes I/N"),
        ("a/b", "takes I/N"),
        ("1/2/3", "takes I/N"),
        ("", "takes I/N"),
        ("\uff11/\uff14", "takes I/N"),  # fullwidth digits: not ASCII
    ],
)
def test_a_bad_shard_is_a_usage_error_that_says_why(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        parse_shard(text)
    assert info.value.code == ExitCode.USAGE


def test_the_shards_of_n_split_every_id_exactly_once() -> None:
    ids = [f"request-{n}" for n in range(3000)] + ["", "é", "\ud800", "line-1"]
    for count in (1, 2, 3, 7):
        owners = [[i for i in range(count) if Shard(i, count).owns(c)] for c in ids]
        assert all(len(o) == 1 for o in owners)
    sizes = [sum(Shard(i, 4).owns(c) for c in ids) for i in range(4)]
    assert min(sizes) > 600  # spread, not all on one


def test_the_hash_is_sha256s_first_8_bytes_whatever_the_process() -> None:
    expected = int.from_bytes(hashlib.sha256(b"a1").digest()[:8], "big")
    assert id_hash("a1") == expected
    # hash() of a str changes per process (PYTHONHASHSEED); this must not
    code = "from ostream.batch.ids import id_hash; print(id_hash('a1'))"
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin", "PYTHONPATH": ROOT},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert int(out.stdout) == expected


def test_the_id_set_remembers_what_was_added_and_nothing_else() -> None:
    ids = IdSet()
    keys = [id_hash(f"id-{n}") for n in range(20_000)]
    assert all(ids.add(k) for k in keys)
    assert not ids.add(keys[5])
    assert len(ids) == 20_000
    assert all(k in ids for k in keys)
    assert not any(id_hash(f"other-{n}") in ids for n in range(20_000))
    assert 0 not in ids and "id-1" not in ids
    assert ids.nbytes <= 20_000 * 8 * 4  # a flat table, not objects


def test_one_shards_ids_still_spread_in_the_id_set() -> None:
    shard = Shard(0, 16)
    ids = IdSet()
    keys = [k for k in (id_hash(f"x{n}") for n in range(50_000)) if shard.owns_hash(k)]
    for key in keys:
        ids.add(key)
    assert len(ids) == len(keys) and all(k in ids for k in keys)

"""`ostream models` and `ostream ps`: a table on a terminal that fits 80 columns, records
only in a pipe, JSON lines with --jsonl, and the exit status a down host gives."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from ostream.cli import main
from ostream.tables import ago, human_size, parse_time, until
from ostream.testing import FakeOllama, Reply, Stall, json_reply
from tests.inproc import environment, err, out
from tests.proc import closed_port, hosts, run

LONG_NAME = "hf.co/some-organisation/a-very-long-model-repository-name-GGUF:Q4_K_M"


@dataclass
class Ran:
    code: int
    out: str
    err: str


def ostream(*args: str, tty: bool = False, environ: dict[str, str] | None = None) -> Ran:
    """`ostream args` in-process; stdout a terminal 80 columns wide when `tty`."""
    env = environment(stdout_tty=tty, environ={"COLUMNS": "80", **(environ or {})})
    code = main(list(args), env=env)
    return Ran(code, out(env).decode(), err(env).decode())


@pytest.fixture
def fleet() -> Iterator[tuple[FakeOllama, FakeOllama, str]]:
    """Two fake hosts with models of their own, and the URL of one that is down."""
    with FakeOllama() as a, FakeOllama() as b:
        stamp = (datetime.now(timezone.utc) - timedelta(days=3, hours=1)).isoformat()
        a.script(
            json_reply(
                {
                    "models": [
                        {"name": "llama3.1:8b", "size": 4_920_753_328, "modified_at": stamp},
                        {"name": LONG_NAME, "size": 274_302_450, "modified_at": stamp},
                    ]
                }
            ),
            "/api/tags",
        )
        b.script(json_reply({"models": []}), "/api/tags")
        yield a, b, f"http://127.0.0.1:{closed_port()}"


def test_a_table_on_a_terminal_fits_80_columns_every_host_in_its_place(
    fleet: tuple[FakeOllama, FakeOllama, str],
) -> None:
    a, b, down = fleet
    ran = ostream("models", *hosts(a.url, down, b.url), "--retries", "0", tty=True)
    lines = ran.out.splitlines()
    assert all(len(line) <= 80 for line in lines), ran.out
    header, first, second, dead, empty = lines
    assert header.split() == ["HOST", "NAME", "SIZE", "MODIFIED"]
    label = a.url.removeprefix("http://")
    assert first.split() == [label, "llama3.1:8b", "4.9", "GB", "3", "days", "ago"]
    assert second.startswith(label) and "…" in second and "274 MB" in second
    # the columns line up: each starts where its heading does, SIZE right-aligned
    for row in (first, second):
        assert row.index("3 days") == header.index("MODIFIED")
        assert row.index("GB" if "GB" in row else "MB") + 2 == header.index("SIZE") + 4
    assert dead.startswith(down.removeprefix("http://"))
    assert "cannot connect" in dead and "connection refused" in dead
    assert empty.split() == [b.url.removeprefix("http://"), "(no", "models)"]
    assert ran.code == 1
    assert ran.err == "ostream: error: 1 of 3 hosts did not answer\n"


def test_in_a_pipe_only_records_go_to_stdout_failures_to_stderr(
    fleet: tuple[FakeOllama, FakeOllama, str],
) -> None:
    a, b, down = fleet
    ran = ostream("models", *hosts(a.url, down, b.url), "--retries", "0")
    lines = ran.out.splitlines()
    assert len(lines) == 3
    assert LONG_NAME in lines[2]  # never cut outside a terminal
    assert ran.err.splitlines() == [
        f"ostream: error: cannot connect to {down}: connection refused;"
        " is `ollama serve` running? (--host, OLLAMA_HOST)",
        "ostream: error: 1 of 3 hosts did not answer",
    ]
    assert ran.code == 1


def test_jsonl_gives_each_server_object_with_its_host(
    fleet: tuple[FakeOllama, FakeOllama, str],
) -> None:
    a, b, _ = fleet
    ran = ostream("models", "--jsonl", *hosts(a.url, b.url), tty=True)
    objects = [json.loads(line) for line in ran.out.splitlines()]
    assert [(o["host"], o["name"]) for o in objects] == [(a.url, "llama3.1:8b"), (a.url, LONG_NAME)]
    assert objects[0]["size"] == 4_920_753_328
    assert (ran.code, ran.err) == (0, "")


def test_hosts_come_from_ostream_hosts(fleet: tuple[FakeOllama, FakeOllama, str]) -> None:
    a, b, _ = fleet
    ran = ostream("models", "--jsonl", environ={"OSTREAM_HOSTS": f"{b.url},{a.url}"})
    assert len(ran.out.splitlines()) == 2
    assert (len(a.requests), len(b.requests), ran.code) == (1, 1, 0)


def test_no_host_answering_exits_3() -> None:
    downs = [f"http://127.0.0.1:{closed_port()}" for _ in range(2)]
    ran = ostream("ps", *hosts(*downs), "--retries", "0")
    assert ran.code == 3
    assert ran.out == ""
    assert ran.err.splitlines()[-1] == "ostream: error: no host answered"


def test_one_host_down_is_its_own_error() -> None:
    down = f"http://127.0.0.1:{closed_port()}"
    ran = ostream("models", "--retries", "0", environ={"OLLAMA_HOST": down}, tty=True)
    assert (ran.code, ran.out) == (3, "")
    assert ran.err == (
        f"ostream: error: cannot connect to {down}: connection refused;"
        " is `ollama serve` running? (--host, OLLAMA_HOST)\n"
    )


def test_an_unparsable_host_is_a_usage_error() -> None:
    ran = ostream("models", "--host", "ftp://x")
    assert ran.code == 2
    assert "ftp://x" in ran.err


def test_ps_shows_size_vram_share_and_until_when(fake_ollama: FakeOllama) -> None:
    soon = (datetime.now(timezone.utc) + timedelta(minutes=4, seconds=30)).isoformat()
    fake_ollama.script(
        json_reply(
            {
                "models": [
                    {
                        "name": "a:1",
                        "size": 6_000_000_000,
                        "size_vram": 3_000_000_000,
                        "expires_at": soon,
                    },
                    {
                        "name": "b:2",
                        "size": 1_000_000,
                        "size_vram": 1_000_000,
                        "expires_at": "2318-01-01T00:00:00Z",
                    },
                ]
            }
        ),
        "/api/ps",
    )
    ran = ostream("ps", "--host", fake_ollama.url, tty=True)
    header, first, second = ran.out.splitlines()
    assert header.split() == ["HOST", "NAME", "SIZE", "VRAM", "UNTIL"]
    assert first.split()[1:] == ["a:1", "6.0", "GB", "50%", "4", "minutes", "from", "now"]
    assert second.split()[1:] == ["b:2", "1.0", "MB", "100%", "forever"]
    assert ran.code == 0


def test_a_server_cannot_drive_the_terminal_through_a_name(fake_ollama: FakeOllama) -> None:
    fake_ollama.script(json_reply({"models": [{"name": "evil\x1b[2J", "size": 1}]}), "/api/tags")
    ran = ostream("models", "--host", fake_ollama.url, tty=True)
    assert ran.code == 0
    assert "\x1b" not in ran.out
    assert "evil^[[2J" in ran.out


def test_a_real_process_exits_1_with_one_host_down(fake_ollama: FakeOllama) -> None:
    down = f"http://127.0.0.1:{closed_port()}"
    result = run(["models", "--retries", "0", *hosts(fake_ollama.url, down)], fake_ollama.url)
    assert result.returncode == 1
    assert re.fullmatch(
        rb"HOST +NAME +SIZE +MODIFIED\n\S+\s+llama3.1:latest\s+4.9 GB\s+\d+ days ago\n",
        result.stdout,
    )


# --- the units a person reads ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 KB"),
        (274_302_450, "274 MB"),
        (4_920_753_328, "4.9 GB"),
    ],
)
def test_sizes_in_decimal_units_like_ollama(size: int, shown: str) -> None:
    assert human_size(size) == shown


def test_times_relative_to_now() -> None:
    now = datetime(2025, 1, 10, 12, 0, tzinfo=timezone.utc)
    assert ago("2025-01-10T11:58:30.123456789Z", now) == "1 minute ago"
    assert ago("2025-01-03T12:00:00+00:00", now) == "7 days ago"
    assert until("2025-01-10T13:00:00+01:00", now) == "now"
    assert until("2025-01-10T14:30:00Z", now) == "2 hours from now"
    assert ago("garbage", now) == "garbage"
    assert parse_time("2024-06-04T14:38:31.83753-07:00") == datetime(
        2024, 6, 4, 21, 38, 31, 837530, tzinfo=timezone.utc
    )


def test_a_single_host_timing_out_exits_124_as_generate_would() -> None:
    with FakeOllama() as slow:
        slow.script(Reply(events=[Stall(30)]), "/api/tags")
        ran = ostream("models", "--host", slow.url, "--timeout", "1", "--retries", "0")
    assert ran.code == 124
    assert ran.err.startswith("ostream: error: ") and ran.err.count("\n") == 1


def test_one_of_two_hosts_refusing_exits_1(fleet: tuple[FakeOllama, FakeOllama, str]) -> None:
    a, _, down = fleet
    ran = ostream("models", "--jsonl", *hosts(a.url, down), "--retries", "0")
    assert ran.code == 1
    assert ran.err.splitlines()[-1] == "ostream: error: 1 of 2 hosts did not answer"

"""ostream.fleet, the library: the host list, and /api/tags and /api/ps read from every
host at once, a host's failure kept as its answer."""

from __future__ import annotations

import threading

import pytest

from ostream.errors import ExitCode
from ostream.fleet import Connection, Host, LoadedModel, Model, loaded, models, parse_hosts
from ostream.host import DEFAULT_URL, HostError
from ostream.testing import FakeOllama, Reply, Send, Wait, go_json, json_reply, text_reply
from tests.proc import closed_port

FAST = Connection(retries=0)


def tags(*names: str) -> Reply:
    return json_reply(
        {
            "models": [
                {
                    "name": n,
                    "model": n,
                    "size": 1000 * (i + 1),
                    "modified_at": "2025-01-01T00:00:00Z",
                }
                for i, n in enumerate(names)
            ]
        }
    )


# --- the host list ---------------------------------------------------------------------


def test_every_host_given_counts_once_normalised_in_order() -> None:
    hosts = parse_hosts(["b:1", "http://a:2/", "a:2", "B:1"], {"OLLAMA_HOST": "c:3"})
    assert hosts == [Host("http://b:1"), Host("http://a:2"), Host("http://B:1")]


def test_ostream_hosts_is_comma_separated_blanks_skipped() -> None:
    environ = {"OSTREAM_HOSTS": " a:1, ,b:2,a:1,", "OLLAMA_HOST": "c:3"}
    assert parse_hosts(None, environ) == [Host("http://a:1"), Host("http://b:2")]


def test_hosts_fall_back_to_ollama_host_then_the_default() -> None:
    assert parse_hosts(None, {"OSTREAM_HOSTS": " ", "OLLAMA_HOST": "c:3"}) == [Host("http://c:3")]
    assert parse_hosts(None, {}) == [Host(DEFAULT_URL)]
    assert parse_hosts([""], {"OLLAMA_HOST": "c:3"}) == [Host(DEFAULT_URL)]  # as --host ""


def test_a_host_that_cannot_be_parsed_is_refused() -> None:
    with pytest.raises(HostError, match="'ftp://x'"):
        parse_hosts(None, {"OSTREAM_HOSTS": "a:1,ftp://x"})


def test_a_label_drops_only_plain_http() -> None:
    assert Host("http://a:1").label == "a:1"
    assert Host("https://a:1").label == "https://a:1"


# --- reading the fleet ---------------------------------------------------------------------


def test_models_of_every_host_in_host_order_a_dead_one_kept_as_its_failure(
    servers: list[FakeOllama],
) -> None:
    a, b = servers
    a.script(tags("x:1", "y:2"), "/api/tags")
    b.script(tags("z:3"), "/api/tags")
    dead = Host(f"http://127.0.0.1:{closed_port()}")
    fleet = [Host(a.url), dead, Host(b.url)]
    answers = models(fleet, FAST)
    assert [answer.host for answer in answers] == fleet
    assert [m.name for m in answers[0].items] == ["x:1", "y:2"]
    assert answers[0].items[1] == Model(Host(a.url), "y:2", 2000, "2025-01-01T00:00:00Z", "", {})
    assert answers[0].items[1].raw["model"] == "y:2"
    assert answers[1].items == ()
    assert answers[1].failure is not None
    assert answers[1].failure.code == ExitCode.CONNECT
    assert "connection refused" in (answers[1].failure.message or "")
    assert [m.name for m in answers[2].items] == ["z:3"]
    assert answers[0].failure is None and answers[2].failure is None


def test_hosts_are_asked_at_once(servers: list[FakeOllama]) -> None:
    a, b = servers
    b_asked = threading.Event()
    # a answers only once b has been asked: one host at a time would leave a waiting.
    a.script(
        Reply(
            content_type="application/json",
            events=[Wait(b_asked, 30), Send(go_json({"models": []}))],
        ),
        "/api/tags",
    )

    def watch() -> None:
        b.wait_for_request(30)
        b_asked.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    answers = models([Host(a.url), Host(b.url)], FAST)
    watcher.join()
    assert [answer.failure for answer in answers] == [None, None]
    assert b.requests[0].received_at < a.requests[0].finished_at  # type: ignore[operator]


def test_loaded_models_with_their_vram_share_and_expiry(fake_ollama: FakeOllama) -> None:
    entry = {
        "name": "m:1",
        "size": 8000,
        "size_vram": 2000,
        "expires_at": "2025-01-01T00:05:00.123456789+01:00",
    }
    fake_ollama.script(json_reply({"models": [entry, {"model": "n", "size": 0}]}), "/api/ps")
    [answer] = loaded([Host(fake_ollama.url)], FAST)
    first, second = answer.items
    assert first == LoadedModel(Host(fake_ollama.url), "m:1", 8000, 2000, entry["expires_at"], {})
    assert first.vram_share == 0.25
    assert (second.name, second.vram_share) == ("n", 0.0)
    assert fake_ollama.requests[0].method == "GET"
    assert fake_ollama.requests[0].path == "/api/ps"


@pytest.mark.parametrize(
    ("reply", "code", "words"),
    [
        (text_reply(500, "boom"), ExitCode.SERVER_ERROR, "HTTP 500"),
        (text_reply(200, "not json", "application/json"), ExitCode.PROTOCOL, "no JSON object"),
        (json_reply({"models": 3}), ExitCode.PROTOCOL, '"models" list'),
    ],
)
def test_a_bad_answer_is_that_hosts_failure(
    fake_ollama: FakeOllama, reply: Reply, code: ExitCode, words: str
) -> None:
    fake_ollama.script(reply, "/api/tags")
    [answer] = models([Host(fake_ollama.url)], FAST)
    assert answer.failure is not None
    assert answer.failure.code == code
    assert words in (answer.failure.message or "")


def test_the_api_key_goes_to_every_host(servers: list[FakeOllama]) -> None:
    models([Host(s.url) for s in servers], Connection(api_key="k", retries=0))
    for server in servers:
        assert server.requests[0].headers["authorization"] == "Bearer k"

"""The fleet: the Ollama servers a command works across, and what each one holds.

A library for `models`, `ps`, `pull` and `batch`: the host list (repeated --host,
else OSTREAM_HOSTS, else OLLAMA_HOST, else the default), and /api/tags and /api/ps
read from every host at once into typed records. A host that fails is kept as a
value (an `Answer` with its `Failure`), never raised: one server down must not hide
the others. Nothing here prints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ostream.client import Client
from ostream.connection import Connection as Connection  # re-exported: fleet.Connection
from ostream.connection import Host as Host
from ostream.errors import Failure, ProtocolError, classify
from ostream.host import base_url, resolve

T = TypeVar("T")
R = TypeVar("R")

ANSWER_LIMIT = 64 << 20  # a /api/tags answer of thousands of models is still far below
# A Tab must not hang: seconds to connect and for each wait for data, and for the whole answer.
TAB_WAIT = 0.5
TAB_TOTAL = 1.0


@dataclass(frozen=True)
class Model:
    """A model a host has (one entry of /api/tags); `raw` is the server's object."""

    host: Host
    name: str
    size: int
    modified_at: str
    digest: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class LoadedModel:
    """A model a host has in memory (one entry of /api/ps); `raw` is the server's object.
    `expires_at` is when it will be unloaded (RFC 3339, as Ollama sends it)."""

    host: Host
    name: str
    size: int
    size_vram: int
    expires_at: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def vram_share(self) -> float:
        """The part of the model in VRAM, 0.0 to 1.0."""
        return min(self.size_vram / self.size, 1.0) if self.size > 0 else 0.0


@dataclass(frozen=True)
class Answer(Generic[T]):
    """What one host answered: its records, or the failure that stopped it."""

    host: Host
    items: tuple[T, ...] = ()
    failure: Failure | None = None


def parse_hosts(values: Sequence[str] | None, environ: Mapping[str, str]) -> list[Host]:
    """The hosts to work across: every --host given, else the comma-separated
    OSTREAM_HOSTS, else OLLAMA_HOST, else the default; each as host.resolve reads it,
    duplicates (after normalising) dropped, order kept. Raises host.HostError (a UsageError)."""
    if values:
        urls = [resolve(value, environ) for value in values]
    elif environ.get("OSTREAM_HOSTS", "").strip():
        urls = [base_url(part) for part in environ["OSTREAM_HOSTS"].split(",") if part.strip()]
    else:
        urls = [resolve(None, environ)]
    return [Host(url) for url in dict.fromkeys(urls)]


def each_host(hosts: Sequence[Host], work: Callable[[Host], R]) -> list[R]:
    """`work(host)` for every host at once, one thread each; the results in host order.
    `work` must not raise (it keeps failures as values)."""
    results: dict[int, R] = {}

    def run(index: int) -> None:
        results[index] = work(hosts[index])

    threads = [
        threading.Thread(target=run, args=(i,), name=f"ostream-host-{i}", daemon=True)
        for i in range(len(hosts))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [results[i] for i in range(len(hosts))]


def get_json(client: Client, path: str, *, within: float | None = None) -> dict[str, Any]:
    """GET `path` and return its JSON object; the typed error otherwise. `within`: the
    seconds the whole answer may take (a Timeout after)."""
    from ostream.ndjson import excerpt, json_object
    from ostream.status import error_for_status

    deadline = None if within is None else time.monotonic() + within
    with client.open("GET", path) as response:
        body = response.read_all(ANSWER_LIMIT, deadline=deadline)
        if response.status >= 300:
            raise error_for_status(response, body, model=None)
    obj = json_object(body)
    if obj is None:
        raise ProtocolError(f"{client.url(path)} answered with no JSON object: {excerpt(body)}")
    return obj


def _listing(
    path: str, record: Callable[[Host, dict[str, Any]], T]
) -> Callable[[Host, Connection], Answer[T]]:
    def read(host: Host, connection: Connection) -> Answer[T]:
        client = connection.client(host)
        try:
            entries = _entries(client, path)
            return Answer(host, tuple(record(host, e) for e in entries))
        except Exception as exc:  # a failure is this host's answer, not the run's
            return Answer(host, failure=classify(exc))
        finally:
            client.close()

    return read


def _entries(client: Client, path: str, within: float | None = None) -> list[dict[str, Any]]:
    """The objects of the "models" list `path` answers with (/api/tags, /api/ps)."""
    entries = get_json(client, path, within=within).get("models")
    if not isinstance(entries, list):
        raise ProtocolError(f'{client.url(path)} answered without a "models" list')
    return [entry for entry in entries if isinstance(entry, dict)]


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _name(obj: Mapping[str, Any]) -> str:
    return _text(obj, "name") or _text(obj, "model")


def _model(host: Host, obj: dict[str, Any]) -> Model:
    name = _name(obj)
    return Model(
        host, name, _int(obj, "size"), _text(obj, "modified_at"), _text(obj, "digest"), obj
    )


def _loaded(host: Host, obj: dict[str, Any]) -> LoadedModel:
    name = _name(obj)
    return LoadedModel(
        host, name, _int(obj, "size"), _int(obj, "size_vram"), _text(obj, "expires_at"), obj
    )


read_models = _listing("/api/tags", _model)
read_loaded = _listing("/api/ps", _loaded)


def models(hosts: Iterable[Host], connection: Connection) -> list[Answer[Model]]:
    """/api/tags from every host at once, in host order."""
    return each_host(list(hosts), lambda host: read_models(host, connection))


def loaded(hosts: Iterable[Host], connection: Connection) -> list[Answer[LoadedModel]]:
    """/api/ps from every host at once, in host order."""
    return each_host(list(hosts), lambda host: read_loaded(host, connection))


def model_names(
    host: Host, connection: Connection, *, within: float | None = None
) -> list[tuple[str, str]]:
    """The models `host` has as (name, parameter size like "8B" or ""), each name once, in
    the server's order, for Tab completion; `within`: the seconds the whole answer may
    take. Raises on any failure (a Tab then offers nothing)."""
    client = connection.client(host)
    try:
        entries = _entries(client, "/api/tags", within)
    finally:
        client.close()
    found: dict[str, str] = {}
    for entry in entries:
        details = entry.get("details")
        size = _text(details, "parameter_size") if isinstance(details, dict) else ""
        if name := _name(entry):
            found.setdefault(name, size)
    return list(found.items())

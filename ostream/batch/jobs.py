"""Jobs from the input, one line at a time, as the scheduler asks for them.

Three line shapes (CONTRACT.md, "batch"): an OpenAI Batch request line, a bare
request body (`prompt` → /api/generate, `messages` → /api/chat), or with `text`
every line a prompt. A line that cannot be run is a Job with an `error`, never
dropped. Only the ids are remembered (IdSet), never the lines.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ostream.batch.ids import IdSet, id_hash
from ostream.batch.openai import fill_openai
from ostream.batch.shard import Shard
from ostream.jsontext import strict_json
from ostream.ndjson import excerpt

GENERATE = "/api/generate"
CHAT = "/api/chat"
EMBED = "/api/embed"
URLS = (GENERATE, CHAT, EMBED, "/v1/chat/completions", "/v1/completions", "/v1/embeddings")
_REQUEST_KEYS = ("url", "method", "body")


@dataclass(frozen=True)
class Defaults:
    """What -m -s -o --format --think --keep-alive give: filled in where a body has none.

    The body always wins; `options` merge key by key. Which endpoint takes which:
    /api/generate all six (`system` as `system`); /api/chat all six (`system` as a
    first system message, only when the messages hold none) and `tools` (a
    preset's, -p); /api/embed `model`, `options`, `keep_alive`; /v1/* `model`, and
    what maps to a field of OpenAI's (openai.py says which).
    """

    model: str | None = None
    system: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    format: Any = None
    think: bool | str | None = None
    keep_alive: str | int | float | None = None
    tools: list[Any] | None = None  # a preset's `tools:`; /api/chat only


@dataclass(frozen=True, slots=True)
class Job:
    """One input line: a request to run, or (`error` set) one that cannot be."""

    custom_id: str
    line: int  # 1-based, blank lines counted, as `sed -n Np` finds it
    url: str | None = None
    body: dict[str, Any] | None = None
    error: str | None = None  # why it cannot run; its result code is invalid_request

    @property
    def model(self) -> str | None:
        model = self.body.get("model") if self.body is not None else None
        return model if isinstance(model, str) else None


class Invalid(Exception):
    """A line that cannot be run, and why."""


class JobReader:
    """Iterates the jobs of `lines` (a binary file, read as iterated, never whole).

    Jobs of other shards are passed over (counted in `elsewhere`), as are those
    already successful in `done` (counted in `skipped`); every other line is a
    Job, in input order. A custom_id seen before makes its line invalid.
    """

    def __init__(
        self,
        lines: Iterable[bytes],
        *,
        text: bool = False,
        defaults: Defaults | None = None,
        done: IdSet | None = None,
        shard: Shard | None = None,
        render: Callable[[str], str] | None = None,
    ) -> None:
        self._lines = lines
        self._text = text
        self._render = render  # a prompt-kind preset: a --text line → its prompt
        self._defaults = defaults or Defaults()
        self._done = done if done is not None else IdSet()
        self._shard = shard
        self.seen = IdSet()
        self.read = 0  # jobs of this shard, skipped ones included
        self.skipped = 0
        self.elsewhere = 0

    def __iter__(self) -> Iterator[Job]:
        for number, raw in enumerate(self._lines, 1):
            if not raw.strip():
                continue
            job = self._job(number, raw)
            key = id_hash(job.custom_id)
            if self._shard is not None and not self._shard.owns_hash(key):
                self.elsewhere += 1
                continue
            self.read += 1
            if not self.seen.add(key):
                yield Job(job.custom_id, number, error=f"duplicate custom_id {job.custom_id!r}")
            elif key in self._done:
                self.skipped += 1
            else:
                yield job

    def _job(self, number: int, raw: bytes) -> Job:
        fallback = f"line-{number}"
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)  # as some Windows editors save
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Job(fallback, number, error="the line is not valid UTF-8")
        if self._text:
            prompt = _chomp(text)
            if self._render is not None:
                prompt = self._render(prompt)
            return self._request(fallback, number, GENERATE, {"prompt": prompt})
        try:
            obj = strict_json(text)  # NaN, Infinity and 1e999 are not JSON a server takes
        except ValueError:
            return Job(fallback, number, error=f"the line is not JSON: {excerpt(raw)}")
        if not isinstance(obj, dict):
            return Job(fallback, number, error=f"the line is not a JSON object: {excerpt(raw)}")
        try:
            custom_id = _custom_id(obj, fallback)
        except Invalid as exc:
            return Job(fallback, number, error=str(exc))
        try:
            url, body = _request_line(obj) if _is_request_line(obj) else _bare_body(obj)
        except Invalid as exc:
            return Job(custom_id, number, error=str(exc))
        return self._request(custom_id, number, url, body)

    def _request(self, custom_id: str, number: int, url: str, body: dict[str, Any]) -> Job:
        fill(url, body, self._defaults)
        model = body.get("model")
        if model is None:
            return Job(custom_id, number, url, error="no model: give one in the body or with -m")
        if not isinstance(model, str) or not model:
            return Job(
                custom_id, number, url, error=f"model must be a name, not {json.dumps(model)}"
            )
        return Job(custom_id, number, url, body)


def _chomp(line: str) -> str:
    """A --text line without its line ending (LF or CRLF)."""
    return line[:-1].removesuffix("\r") if line.endswith("\n") else line.removesuffix("\r")


def _custom_id(obj: dict[str, Any], fallback: str) -> str:
    custom_id = obj.get("custom_id", fallback)
    if not isinstance(custom_id, str) or not custom_id:
        raise Invalid(f"custom_id must be a non-empty string, not {json.dumps(custom_id)}")
    return custom_id


def _is_request_line(obj: dict[str, Any]) -> bool:
    return any(key in obj for key in _REQUEST_KEYS)


def _request_line(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    method = obj.get("method", "POST")
    if not isinstance(method, str) or method.upper() != "POST":
        raise Invalid(f"method must be POST, not {json.dumps(method)}")
    url = obj.get("url")
    if url not in URLS:
        shown = "missing" if url is None else json.dumps(url)
        raise Invalid(f"url {shown} is not one of {', '.join(URLS)}")
    body = obj.get("body")
    if not isinstance(body, dict):
        raise Invalid("body must be a JSON object" if "body" in obj else "no body")
    return url, body


def _bare_body(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    obj.pop("custom_id", None)
    if "prompt" in obj and "messages" in obj:
        raise Invalid("a body with both prompt and messages: which endpoint is meant?")
    if "prompt" in obj:
        return GENERATE, obj
    if "messages" in obj:
        return CHAT, obj
    raise Invalid("neither a request line (url, body) nor a body with prompt or messages")


def fill(url: str, body: dict[str, Any], defaults: Defaults) -> None:
    """Put the defaults into `body` where it has none (Defaults says which, where)."""
    _set(body, "model", defaults.model)
    if url.startswith("/v1/"):
        fill_openai(url, body, defaults)
        return
    if defaults.options:
        options = body.get("options")
        if options is None:
            body["options"] = dict(defaults.options)  # a copy: bodies never share one
        elif isinstance(options, dict):
            body["options"] = {**defaults.options, **options}
    _set(body, "keep_alive", defaults.keep_alive)
    if url == EMBED:
        return
    _set(body, "format", defaults.format)
    _set(body, "think", defaults.think)
    if url == CHAT:
        _set(body, "tools", defaults.tools)
    if defaults.system is None:
        return
    if url == GENERATE:
        _set(body, "system", defaults.system)
        return
    messages = body.get("messages")
    if isinstance(messages, list) and not any(
        isinstance(m, dict) and m.get("role") == "system" for m in messages
    ):
        body["messages"] = [{"role": "system", "content": defaults.system}, *messages]


def _set(body: dict[str, Any], key: str, value: Any) -> None:
    """Fill `key` when the body has none; null counts as none, as it does for Ollama."""
    if value is not None and body.get(key) is None:
        body[key] = value


def wire_body(job: Job) -> dict[str, Any]:
    """The body as sent: /api/generate and /api/chat always stream (so an idle limit
    and a cancel work; the answer is assembled into the non-streamed shape), the
    /v1/* endpoints never (their streamed form is server-sent events, not a body)."""
    assert job.url is not None and job.body is not None
    if job.url in (GENERATE, CHAT):
        return {**job.body, "stream": True}
    if job.url.startswith("/v1/") and "stream" in job.body:
        return {**job.body, "stream": False}
    return job.body

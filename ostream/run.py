"""One request, start to finish: send it, check the status, stream the answer out.

Every exit path closes the connection: that is what stops Ollama generating.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ostream.client import Client, Response
from ostream.errors import ModelNotFound, ProtocolError, ServerError, UsageError
from ostream.ndjson import compact_line, excerpt, json_object
from ostream.output import Writer, format_stats
from ostream.rawbody import copy_raw
from ostream.signals import reader_watch
from ostream.stream import ENDED_EARLY, Kind, Reply, Streamer

ERROR_HEAD = 1 << 16


@dataclass
class Target:
    base_url: str
    api_key: str | None = None
    timeout: float | None = None
    retries: int = 2

    def client(self) -> Client:
        return Client(
            self.base_url, api_key=self.api_key, timeout=self.timeout, retries=self.retries
        )


def stream_answer(
    target: Target,
    kind: Kind,
    body: dict[str, Any],
    writer: Writer,
    *,
    jsonl: bool = False,
    show_thinking: bool = True,
    keep: bool = False,
    verbose: bool = False,
) -> Reply:
    """POST `body` to /api/generate or /api/chat and write the answer as it arrives."""
    try:
        payload = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("an argument or a file holds text that is not valid UTF-8") from None
    except ValueError as exc:  # NaN or an infinity that slipped through
        raise UsageError(f"the request cannot be sent as JSON: {exc}") from None
    client = target.client()
    try:
        with (
            reader_watch(writer.streams.stdout),
            client.open("POST", "/api/" + kind, payload) as response,
        ):
            if response.status >= 300:
                fail(response, writer, model=str(body.get("model", "")), jsonl=jsonl)
            streamer = Streamer(kind, writer, jsonl=jsonl, show_thinking=show_thinking, keep=keep)
            reply = streamer.run(response.chunks())
    except BrokenPipeError:
        raise
    except Exception:
        # The connection is closed by now; end the partial answer's line.
        if not jsonl:
            writer.finish()
        raise
    except BaseException:
        # A signal: the connection is closed by now. A pipe may be what is blocking,
        # so the newline goes only where a write cannot wait (a file, a terminal).
        if not jsonl and writer.streams.stdout_never_blocks:
            writer.finish()
        raise
    finally:
        client.close()
    if not jsonl:
        writer.finish()
    if verbose and reply.done is not None:
        writer.info(format_stats(reply.done))
    return reply


def raw_request(target: Target, method: str, path: str, body: bytes | None, writer: Writer) -> None:
    """Send `body` as it is and copy the answer to stdout byte for byte."""
    client = target.client()
    try:
        with reader_watch(writer.streams.stdout), client.open(method, path, body) as response:
            head = bytearray()  # the start of an error answer, for the message

            def chunks() -> Iterator[bytes]:
                for data in response.chunks():
                    if len(head) < ERROR_HEAD:
                        head.extend(data[: ERROR_HEAD - len(head)])
                    yield data

            ndjson = "ndjson" in response.content_type and response.status < 300
            seen = copy_raw(chunks(), writer, ndjson=ndjson)
            if response.status >= 300:
                raise status_error(response, bytes(head), model=None)
            if seen.error is not None:
                raise ServerError(seen.error)
            if seen.unfinished():
                raise ProtocolError(ENDED_EARLY)
            if seen.bad is not None:
                raise seen.bad
    finally:
        client.close()


def fail(response: Response, writer: Writer, *, model: str, jsonl: bool) -> None:
    """Raise the error an HTTP status ≥ 300 stands for (the JSON body to stdout in --jsonl)."""
    body = response.read_all(ERROR_HEAD)
    if jsonl and json_object(body) is not None:
        writer.line(compact_line(body))  # one line, even when the server pretty-printed it
    raise status_error(response, body, model=model)


def status_error(response: Response, body: bytes, *, model: str | None) -> Exception:
    obj = json_object(body)
    message = obj.get("error") if obj is not None else None
    if response.status == 404 and isinstance(message, str):
        if model and model in message:
            return ModelNotFound(f"model '{model}' not found; try: ollama pull {model}")
        if model:  # a 404 for a model is a missing model (Ollama's rule), but show its words
            return ModelNotFound(
                f"{message} (HTTP 404 for model '{model}'; try: ollama pull {model})"
            )
        if "model" in message:
            return ModelNotFound(message)
    status = f"{response.status} {response.reason}".strip()
    if response.status < 400:
        return ServerError(
            f"HTTP {status}: {response.url} redirects to {response.location or '?'};"
            " point --host at the final address"
        )
    if isinstance(message, str):
        return ServerError(f"{message} (HTTP {status})")
    if body.strip():
        return ServerError(f"HTTP {status} from {response.url}: {excerpt(body.strip())}")
    return ServerError(f"HTTP {status} from {response.url}")

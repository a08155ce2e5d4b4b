"""One request, start to finish: send it, check the status, stream the answer out.

Every exit path closes the connection: that is what stops Ollama generating.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ostream.client import Client, Response, RetryNotice
from ostream.connection import Connection, Host
from ostream.errors import ProtocolError, ServerError, UsageError
from ostream.ndjson import compact_line, json_object
from ostream.output import Writer, format_stats
from ostream.signals import reader_watch
from ostream.status import error_for_status
from ostream.stream import ENDED_EARLY, Kind, Reply, Streamer

ERROR_HEAD = 1 << 16


@dataclass(frozen=True)
class Target:
    """The one server generate, chat and raw talk to, and how."""

    host: Host
    connection: Connection = field(default_factory=Connection)

    def client(self, writer: Writer | None = None) -> Client:
        """The client; with a `writer` whose stderr is a terminal, waits for a retry
        are announced there (`busy (HTTP 503), retrying in 8 s (1/2)`)."""

        notice: RetryNotice | None = None
        if writer is not None and writer.streams.stderr_tty:
            info = writer.info

            def notice(why: str, wait: float, attempt: int, retries: int) -> None:
                info(f"ostream: {why}, retrying in {wait:g} s ({attempt}/{retries})\n")

        return self.connection.client(self.host, notice)


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
    resume: bool = False,
    reply: Reply | None = None,
) -> Reply:
    """POST `body` to /api/generate or /api/chat and write the answer as it arrives.

    `reply`: filled as the answer arrives, so the caller keeps what came of an answer
    that failed. `resume`: a stream that breaks after text was written is continued
    (ostream.resume), at most `target.connection.retries` times.
    """
    reply = reply if reply is not None else Reply()
    client = target.client(writer)

    def ask(kind: Kind, body: dict[str, Any]) -> None:
        payload = request_payload(body)
        with client.open("POST", "/api/" + kind, payload) as response:
            if response.status >= 300:
                raise_for_status(response, writer, model=str(body.get("model", "")), jsonl=jsonl)
            streamer = Streamer(
                kind,
                writer,
                jsonl=jsonl,
                show_thinking=show_thinking,
                keep=keep or resume,
                reply=reply,
            )
            streamer.run(response.chunks())

    try:
        with reader_watch(writer.streams.stdout):
            try:
                ask(kind, body)
            except ProtocolError as exc:
                if not resume:
                    raise
                from ostream.resume import resume_cut

                resume_cut(exc, ask, kind, body, reply, writer, target.connection.retries)
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


def request_payload(body: dict[str, Any]) -> bytes:
    """`body` as the UTF-8 JSON that is sent."""
    try:
        return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("an argument or a file holds text that is not valid UTF-8") from None
    except ValueError as exc:  # NaN or an infinity that slipped through
        raise UsageError(f"the request cannot be sent as JSON: {exc}") from None


def raw_request(
    target: Target,
    method: str,
    path: str,
    body: bytes | None,
    writer: Writer,
    *,
    method_chosen: bool = True,
) -> None:
    """Send `body` as it is and copy the answer to stdout byte for byte; `method_chosen`
    False: the method follows from the body (a 405 to a bodiless GET then hints at -d)."""
    from ostream.raw import copy_response

    client = target.client(writer)
    try:
        with reader_watch(writer.streams.stdout), client.open(method, path, body) as response:
            head = bytearray()  # the start of an error answer, for the message

            def chunks() -> Iterator[bytes]:
                for data in response.chunks():
                    if len(head) < ERROR_HEAD:
                        head.extend(data[: ERROR_HEAD - len(head)])
                    yield data

            ndjson = "ndjson" in response.content_type and response.status < 300
            copied = copy_response(chunks(), writer, ndjson=ndjson)
            if response.status >= 300:
                error = error_for_status(response, bytes(head), model=_model_of(body))
                if response.status == 405 and body is None and not method_chosen:
                    error.message += "; no body was given, so this was a GET: give -d JSON"
                raise error
            if copied.error is not None:
                raise ServerError(copied.error)
            if copied.unfinished():
                raise ProtocolError(ENDED_EARLY)
            if copied.bad is not None:
                raise copied.bad
    finally:
        client.close()


def _model_of(body: bytes | None) -> str | None:
    """The model a raw request names, for a 404's `ollama pull` hint."""
    obj = json_object(body) if body else None
    model = (obj.get("model") or obj.get("name")) if obj is not None else None
    return model if isinstance(model, str) and model else None


def raise_for_status(response: Response, writer: Writer, *, model: str, jsonl: bool) -> None:
    """Raise the error an HTTP status ≥ 300 stands for (the JSON body to stdout in --jsonl)."""
    body = response.read_all(ERROR_HEAD)
    if jsonl and json_object(body) is not None:
        writer.line(compact_line(body))  # one line, even when the server pretty-printed it
    raise error_for_status(response, body, model=model)

"""What an HTTP status of 300 or more means: the typed error, and its message."""

from __future__ import annotations

from ostream.client import Response
from ostream.errors import ModelNotFound, OstreamError, ServerError
from ostream.ndjson import excerpt, json_object


def error_for_status(response: Response, body: bytes, *, model: str | None) -> OstreamError:
    """The error an HTTP status >= 300 stands for; `body` is the start of the answer,
    `model` the model asked for (a 404 naming it means it is missing)."""
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
    # A proxy's own answer (407, 502, 504...) is not Ollama's: say the proxy was in the way.
    source = f"{response.url}{response.via}"
    if body.strip():
        return ServerError(f"HTTP {status} from {source}: {excerpt(body.strip())}")
    return ServerError(f"HTTP {status} from {source}")

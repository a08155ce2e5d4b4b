"""What -s, -o and --format give a /v1/* job, under OpenAI's names.

Ollama's OpenAI endpoints take their own fields, not `system`, `options` or
`format`: a default is filled in only where it maps cleanly, and only where
the body has none (null counts as none). /v1/chat/completions: `-s` as a first
system message (when the messages hold no system or developer one), `-o`
temperature, top_p, seed, stop, frequency_penalty, presence_penalty under
those names and num_predict as max_tokens, `--format` as response_format.
/v1/completions: the same `-o` fields. /v1/embeddings: none. `--think`,
`--keep-alive` and the other `-o` keys have no OpenAI field and do not apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ostream.batch.jobs import Defaults

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
OPTION_FIELDS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "num_predict": "max_tokens",
}


def fill_openai(url: str, body: dict[str, Any], defaults: Defaults) -> None:
    """Put the defaults that map into a /v1/* `body` where it has none (`model` aside:
    the caller fills that for every URL)."""
    if url not in (CHAT, COMPLETIONS):
        return
    for option, value in defaults.options.items():
        if option in OPTION_FIELDS and body.get(OPTION_FIELDS[option]) is None:
            body[OPTION_FIELDS[option]] = value
    if url != CHAT:
        return
    if defaults.format is not None and body.get("response_format") is None:
        body["response_format"] = response_format(defaults.format)
    messages = body.get("messages")
    if defaults.system is not None and isinstance(messages, list) and not _has_system(messages):
        body["messages"] = [{"role": "system", "content": defaults.system}, *messages]


def _has_system(messages: list[Any]) -> bool:
    return any(isinstance(m, dict) and m.get("role") in ("system", "developer") for m in messages)


def response_format(fmt: Any) -> dict[str, Any]:
    """--format json, or a JSON schema, as OpenAI's response_format."""
    if fmt == "json":
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": "format", "schema": fmt}}

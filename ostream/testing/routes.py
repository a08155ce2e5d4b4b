"""The endpoints: which reply a request gets when no script is queued for it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ostream.testing import behaviours, openai
from ostream.testing.behaviours import behaviour, completion, model_error, prompt_text
from ostream.testing.events import Recorded, Reply
from ostream.testing.replies import empty_reply, error_reply, json_reply, ndjson, paced, text_reply

if TYPE_CHECKING:
    from ostream.testing.fake import FakeOllama

VERSION = "0.12.0"
DETAILS: dict[str, Any] = {
    "parent_model": "",
    "format": "gguf",
    "family": "llama",
    "families": ["llama"],
    "parameter_size": "8.0B",
    "quantization_level": "Q4_K_M",
}
DIGEST = "46e0c10c039e019119339687c3c1757cc81b9da49709a3b3924863ba87ca666e"

Wait = Callable[[threading.Event], None]
_GO_TYPES = {
    "generate": "api.GenerateRequest",
    "chat": "api.ChatRequest",
    "embed": "api.EmbedRequest",
}


def tag(name: str, size: int) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "modified_at": "2025-01-01T00:00:00Z",
        "size": size,
        "digest": DIGEST,
        "details": DETAILS,
    }


def json_error(body: bytes) -> str:
    """A Go-like message for a body json.loads refuses."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid character in string literal"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            return "unexpected EOF"
        where = "looking for beginning of value"
        if exc.msg.startswith("Expecting property name"):
            where = "looking for beginning of object key string"
        elif exc.msg.startswith("Extra data"):
            where = "after top-level value"
        elif exc.msg.startswith("Expecting ',' delimiter"):
            where = "after object key:value pair"
        return f"invalid character '{text[exc.pos]}' {where}"
    return "invalid JSON"


def request_object(rec: Recorded, go_type: str) -> dict[str, Any] | Reply:
    """The request's JSON object, or the 400 Ollama answers."""
    if not rec.body.strip():
        return error_reply(400, "missing request body")
    if rec.json is None and rec.body.strip() != b"null":
        return error_reply(400, json_error(rec.body))
    if not isinstance(rec.json, dict):
        kind = {list: "array", str: "string", bool: "bool", type(None): "null"}.get(
            type(rec.json), "number"
        )
        return error_reply(400, f"json: cannot unmarshal {kind} into Go value of type {go_type}")
    return rec.json


def named(req: dict[str, Any], *, name_too: bool = False) -> str | Reply:
    """The model a request names, or 400. `name_too`: endpoints still taking `name`."""
    model = req.get("model") or (req.get("name") if name_too else None)
    if not isinstance(model, str) or not model:
        return error_reply(400, "model is required")
    return model


class Routes:
    """The default replies of one FakeOllama."""

    def __init__(self, fake: FakeOllama) -> None:
        self.fake = fake

    def reply(self, rec: Recorded, wait: Wait) -> Reply:
        key = (rec.method, rec.path)
        if key in (("POST", "/api/generate"), ("POST", "/api/chat"), ("POST", "/api/embed")):
            return self.generation(rec.path.rsplit("/", 1)[1], rec, wait)
        if rec.method == "POST" and rec.path in openai.KINDS:
            return self.openai(rec, wait)
        simple: dict[tuple[str, str], Callable[[Recorded], Reply]] = {
            ("GET", "/api/tags"): lambda r: json_reply({"models": self.tags()}),
            ("GET", "/api/version"): lambda r: json_reply({"version": VERSION}),
            ("HEAD", "/api/version"): lambda r: json_reply({"version": VERSION}),
            ("GET", "/api/ps"): lambda r: json_reply({"models": self.fake._loaded()}),
            ("GET", "/v1/models"): lambda r: json_reply(self.openai_models()),
            ("POST", "/api/pull"): self.pull,
            ("POST", "/api/show"): self.show,
            ("POST", "/api/embeddings"): self.embeddings,
            ("POST", "/api/copy"): self.copy,
            ("DELETE", "/api/delete"): self.delete,
            ("GET", "/"): lambda r: text_reply(200, "Ollama is running"),
            ("HEAD", "/"): lambda r: text_reply(200, "Ollama is running"),
        }
        route = simple.get(key)
        known = {"/api/generate", "/api/chat", "/api/embed", *openai.KINDS}
        if route is None and (rec.path in known or any(path == rec.path for _, path in simple)):
            # Ollama's router answers a known path asked with another method with 405.
            return text_reply(405, "405 method not allowed", "text/plain")
        if route is None:
            return text_reply(404, "404 page not found", "text/plain")
        return route(rec)

    def tags(self) -> list[dict[str, Any]]:
        sim = self.fake.sim
        if sim is None:
            return [tag("llama3.1:latest", 4920753328)]
        return [tag(name, sim.sim.size) for name in sim.models]

    def openai_models(self) -> dict[str, Any]:
        data = [
            {"id": t["name"], "object": "model", "created": 1735689600, "owned_by": "library"}
            for t in self.tags()
        ]
        return {"object": "list", "data": data}

    def generation(self, kind: str, rec: Recorded, wait: Wait) -> Reply:
        req = request_object(rec, _GO_TYPES[kind])
        if isinstance(req, Reply):
            return req
        return self.answer(kind, req, wait)

    def answer(self, kind: str, req: dict[str, Any], wait: Wait) -> Reply:
        """/api/generate, /api/chat, /api/embed for a request object."""
        model = named(req)
        if isinstance(model, Reply):
            return model
        refused = self.fake._refusing(model)
        if refused is not None:
            return refused
        error = model_error(model, self.fake._first_busy)
        if error is not None:
            return error
        sim = self.fake.sim
        if sim is not None and behaviour(model) not in behaviours.BEHAVIOURS:
            if not sim.knows(model):
                return error_reply(404, f"model '{model}' not found")
            text, empty = prompt_text(kind, req) if kind != "embed" else ("", False)
            if kind == "embed":
                text = json.dumps(req.get("input"))
            if not empty:
                return sim.answer(kind, req, model, text, wait)
        if kind == "embed":
            return self.embed(req, model)
        return completion(kind, req, model)

    def openai(self, rec: Recorded, wait: Wait) -> Reply:
        body = request_object(rec, "openai request")
        if isinstance(body, Reply):
            return openai.convert(rec.path, {}, body)
        native = openai.native_request(rec.path, body)
        return openai.convert(rec.path, body, self.answer(openai.KINDS[rec.path], native, wait))

    @staticmethod
    def embed(req: dict[str, Any], model: str) -> Reply:
        inputs = req.get("input")
        count = len(inputs) if isinstance(inputs, list) else 1
        return json_reply(
            {
                "model": model,
                "embeddings": [[0.1, 0.2, 0.3] for _ in range(count)],
                "total_duration": 14_143_917,
                "load_duration": 1_019_500,
                "prompt_eval_count": 8 * count,
            }
        )

    @staticmethod
    def model_request(
        rec: Recorded, go_type: str, *, name_too: bool = True
    ) -> tuple[dict[str, Any], str] | Reply:
        """The request object and the model it names, or the 400 Ollama answers."""
        req = request_object(rec, go_type)
        if isinstance(req, Reply):
            return req
        model = named(req, name_too=name_too)
        return model if isinstance(model, Reply) else (req, model)

    def embeddings(self, rec: Recorded) -> Reply:
        got = self.model_request(rec, "api.EmbeddingRequest", name_too=False)
        if isinstance(got, Reply):
            return got
        _, model = got
        error = model_error(model, self.fake._first_busy)
        return error or json_reply({"embedding": [0.1, 0.2, 0.3]})

    def pull(self, rec: Recorded) -> Reply:
        got = self.model_request(rec, "api.PullRequest")
        if isinstance(got, Reply):
            return got
        req, model = got
        stream = req.get("stream", True) is not False
        if behaviour(model) == "missing":
            message = "pull model manifest: file does not exist"
            if not stream:
                return error_reply(500, message)
            lines = [ndjson({"status": "pulling manifest"}), ndjson({"error": message})]
            return Reply(events=paced(lines, 0))
        if not stream:
            return json_reply({"status": "success"})
        digest = "sha256:abc"
        statuses: list[dict[str, Any]] = [
            {"status": "pulling manifest"},
            {"status": "pulling abc", "digest": digest, "total": 100},
            {"status": "pulling abc", "digest": digest, "total": 100, "completed": 50},
            {"status": "pulling abc", "digest": digest, "total": 100, "completed": 100},
            {"status": "verifying sha256 digest"},
            {"status": "writing manifest"},
            {"status": "success"},
        ]
        return Reply(events=paced([ndjson(s) for s in statuses], 0))

    def show(self, rec: Recorded) -> Reply:
        got = self.model_request(rec, "api.ShowRequest")
        if isinstance(got, Reply):
            return got
        _, model = got
        beh = behaviour(model)
        sim = self.fake.sim
        unknown = sim is not None and beh not in behaviours.BEHAVIOURS and not sim.knows(model)
        if beh in ("missing", "old-missing") or unknown:
            return error_reply(404, f"model '{model}' not found")
        capabilities = ["completion"]
        if beh == "think":
            capabilities.append("thinking")
        if beh == "tools":
            capabilities.append("tools")
        return json_reply(
            {
                "license": "",
                "modelfile": f'# Modelfile generated by "ollama show"\nFROM {model}\n',
                "parameters": 'stop "<|eot_id|>"',
                "template": "{{ .Prompt }}",
                "details": dict(DETAILS),
                "model_info": {
                    "general.architecture": "llama",
                    "general.parameter_count": 8030261248,
                },
                "capabilities": capabilities,
                "modified_at": "2025-01-01T00:00:00Z",
            }
        )

    def copy(self, rec: Recorded) -> Reply:
        req = request_object(rec, "api.CopyRequest")
        if isinstance(req, Reply):
            return req
        source = req.get("source")
        if isinstance(source, str) and behaviour(source) == "missing":
            return error_reply(404, f"model '{source}' not found")
        return empty_reply()

    def delete(self, rec: Recorded) -> Reply:
        got = self.model_request(rec, "api.DeleteRequest")
        if isinstance(got, Reply):
            return got
        _, model = got
        if behaviour(model) == "missing":
            return error_reply(404, f"model '{model}' not found")
        return empty_reply()

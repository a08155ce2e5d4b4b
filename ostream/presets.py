"""Presets (`-p NAME`): saved prompts as Markdown files, found, parsed and rendered.

A preset is a Markdown file with an optional front matter (between two `---`
lines, one `key: value` a line, the value JSON when it parses, else a string)
that sets request options by their long names. Its body is either the system
prompt, or, when it holds `{{input}}`, `{{stdin}}` or `{{args}}`, the prompt
itself, rendered once. Nothing else in the text is ever interpreted: other
`{{...}}`, `$x` and braces stay as they are, and inserted text is not rescanned.

Used by generate and chat (cli), and meant for batch and `chat -i`: load_preset;
Preset.request_fields / apply_defaults (the request options), Preset.values (the
--var values checked), Preset.system_prompt, Preset.render (a prompt-kind body,
once per prompt) and Preset.turn (both, for one request).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ostream.errors import UsageError
from ostream.inputs import file_bytes, text

# Front-matter keys that set a request option (their long option names), and the others.
REQUEST_KEYS = ("model", "system", "options", "format", "think", "keep-alive", "tools")
KEYS = (*REQUEST_KEYS, "description", "vars")
INPUTS = ("input", "stdin", "args")
_PLACEHOLDER = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_-]*)\}\}")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass
class Preset:
    """One parsed preset file."""

    name: str
    path: Path
    body: str
    settings: dict[str, Any] = field(default_factory=dict)  # request options, long names
    description: str = ""
    vars: dict[str, str | None] = field(default_factory=dict)  # None: required

    @property
    def kind(self) -> str:
        """ "prompt" when the body places the input, else "system"."""
        used = {m.group(1) for m in _PLACEHOLDER.finditer(self.body)}
        return "prompt" if used & set(INPUTS) else "system"

    def system_prompt(self, values: Mapping[str, str]) -> str | None:
        """The system prompt it gives: a system-kind body (its vars rendered), else the
        front matter's `system`; None when neither."""
        if self.kind == "system" and self.body.strip():
            return render(self.body, values)
        system = self.settings.get("system")
        return render(system, values) if isinstance(system, str) else None

    def values(self, given: Mapping[str, str]) -> dict[str, str]:
        """The declared vars' values: `given` (--var) over the defaults. A var it does
        not declare, or a required one missing, is a usage error naming them."""
        unknown = sorted(set(given) - set(self.vars))
        if unknown:
            declared = ", ".join(sorted(self.vars)) or "none"
            raise UsageError(
                f"preset {self.name}: no var {', '.join(unknown)} (it declares: {declared})"
            )
        values = {k: v for k, v in self.vars.items() if v is not None}
        values.update(given)
        missing = [k for k in self.vars if k not in values]
        if missing:
            flags = " ".join(f"--var {k}=VALUE" for k in missing)
            raise UsageError(f"preset {self.name}: {', '.join(missing)} required: give {flags}")
        return values

    def render(self, stdin: str | None, words: list[str], values: Mapping[str, str]) -> str:
        """A prompt-kind body as the prompt: `{{input}}` the usual stdin-then-words
        prompt, `{{stdin}}` and `{{args}}` its halves, `{{name}}` a var; no input at all
        is a usage error."""
        from ostream.prompt import assemble

        prompt = assemble(stdin, words)
        if prompt is None:
            raise UsageError(f"preset {self.name}: no input: give words or pipe text on stdin")
        spoken = " ".join(words) if any(words) else ""
        inputs = {"input": prompt, "stdin": (stdin or "").rstrip("\n"), "args": spoken}
        return render(self.body, {**values, **inputs})

    def turn(
        self, stdin: str | None, words: list[str], given: Mapping[str, str]
    ) -> tuple[str | None, str | None]:
        """(system prompt, prompt) for one request: a prompt-kind body rendered, else
        the usual stdin-then-words prompt (None when there is none)."""
        from ostream.prompt import assemble

        values = self.values(given)
        if self.kind == "prompt":
            return self.system_prompt(values), self.render(stdin, words, values)
        return self.system_prompt(values), assemble(stdin, words)

    def request_fields(self) -> dict[str, Any]:
        """The front matter's request options under their request-body names, parsed as
        the command line parses them (`keep-alive: 5m` → `keep_alive`); without
        `system`, which system_prompt gives."""
        from ostream import options

        fields: dict[str, Any] = {}
        for key, value in self.settings.items():
            if key == "think" and isinstance(value, str):
                value = options.parse_think(value)
            elif key == "keep-alive":
                value = options.parse_keep_alive(str(value))
            if key != "system":
                fields[key.replace("-", "_")] = value
        return fields

    def apply_defaults(self, body: dict[str, Any], *, tools: bool) -> None:
        """Fill in what the preset sets and `body` (from the command line, or a batch
        job) leaves out: `options` key by key, the body winning; `tools` only where the
        endpoint takes them (chat)."""
        for key, value in self.request_fields().items():
            if key == "options":
                body["options"] = {**value, **(body.get("options") or {})}
            elif key != "tools" or tools:
                body.setdefault(key, value)


def render(template: str, values: Mapping[str, str]) -> str:
    """`template` with each `{{name}}` whose name is in `values` replaced, in one pass:
    an inserted value is never scanned again; every other text stays as it is."""

    def replace(match: re.Match[str]) -> str:
        return values.get(match.group(1), match.group(0))

    return _PLACEHOLDER.sub(replace, template)


def parse_vars(pairs: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    """`--var NAME=VALUE` pairs; `NAME=@FILE` is the file's text (final newlines dropped)."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _VAR_NAME.fullmatch(name):
            raise UsageError(f"--var takes NAME=VALUE or NAME=@FILE, not {pair!r}")
        if value.startswith("@"):
            value = text(file_bytes(value[1:], f"--var {name}", environ), value[1:]).rstrip("\n")
        values[name] = value
    return values


# --------------------------------------------------------------------------- parsing


def parse_preset(source: str, name: str, path: Path) -> Preset:
    """A preset from its file's text; a bad front matter is a usage error."""
    where = f"preset {path}"
    front, body = _split(source.replace("\r\n", "\n"), where)  # CRLF files read as LF
    body = body.rstrip("\n")  # a file's last newline is not part of the prompt
    preset = Preset(name, path, body)
    for number, line in front:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, raw = line.partition(":")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{where}:{number}: not `key: value`: {line.strip()!r}")
        if key not in KEYS:
            raise UsageError(f"{where}:{number}: unknown key {key!r} (known: {', '.join(KEYS)})")
        value = _value(raw.strip())
        _check(key, value, f"{where}:{number}")
        if key == "description":
            preset.description = str(value)
        elif key == "vars":
            preset.vars = value
        else:
            preset.settings[key] = value
    if preset.kind == "system" and preset.body.strip() and "system" in preset.settings:
        raise UsageError(f"{where}: both the body and `system:` give the system prompt")
    return preset


def _split(source: str, where: str) -> tuple[list[tuple[int, str]], str]:
    """(numbered front-matter lines, body). A front matter without its closing `---`
    is a usage error: taking it all for the body would send the settings as a prompt."""
    lines = source.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        return [], source
    for index in range(1, len(lines)):
        if lines[index].rstrip() == "---":
            front = [(n + 2, line.rstrip("\r\n")) for n, line in enumerate(lines[1:index])]
            return front, "".join(lines[index + 1 :]).lstrip("\n")
    raise UsageError(f"{where}: the front matter begun by `---` on line 1 has no closing `---`")


def _value(raw: str) -> Any:
    from ostream.jsontext import strict_json

    try:
        return strict_json(raw)
    except ValueError:
        return raw


def _check(key: str, value: Any, where: str) -> None:
    """The value a key takes, checked by the option's own rules; a message names the
    file, the line and the key (`think:`, not the option `--think`)."""
    from ostream import options

    def need(ok: bool, what: str) -> None:
        if not ok:
            shown = json.dumps(value, ensure_ascii=False)
            raise UsageError(f"{where}: {key} takes {what}, not {shown}")

    def parsed(parse: Callable[[str], object]) -> None:
        try:
            parse(str(value))
        except UsageError as exc:
            raise UsageError(f"{where}: {exc.message.replace(f'--{key}', key, 1)}") from None

    if key in ("model", "system", "description"):
        need(isinstance(value, str) and bool(value), "text")
    elif key == "options":
        need(isinstance(value, dict), "a JSON object")
    elif key == "format":
        need(value == "json" or isinstance(value, dict), "json or a JSON schema object")
    elif key == "think":
        if not isinstance(value, bool):
            need(isinstance(value, str), "true, false or a level")
            parsed(options.parse_think)
    elif key == "keep-alive":
        need(isinstance(value, (str, int, float)) and not isinstance(value, bool), "a duration")
        parsed(options.parse_keep_alive)
    elif key == "tools":
        need(isinstance(value, list), "a JSON array of tool schemas")
    elif key == "vars":
        need(
            isinstance(value, dict),
            'a JSON object of names to defaults (null: required), like {"lang": "French"}',
        )
        _check_vars(value, where)


def _check_vars(declared: dict[str, Any], where: str) -> None:
    for name, default in declared.items():
        if name in INPUTS:
            raise UsageError(
                f"{where}: vars: the name {name!r} is reserved ({{{{input}}}}, {{{{stdin}}}} "
                "and {{args}} are the input itself); choose another"
            )
        if not _VAR_NAME.fullmatch(name):
            raise UsageError(
                f"{where}: vars: {json.dumps(name, ensure_ascii=False)} is not a var name "
                "(a letter or _, then letters, digits, _ or -)"
            )
        if default is not None and not isinstance(default, str):
            shown = json.dumps(default, ensure_ascii=False)
            raise UsageError(
                f"{where}: vars: {name} takes a text default or null (required), not {shown}"
            )


# --------------------------------------------------------------------------- lookup


def search_path(environ: Mapping[str, str]) -> list[Path]:
    """Where names are looked up, in order: OSTREAM_PRESETS, then the config folder."""
    dirs = [Path(d) for d in environ.get("OSTREAM_PRESETS", "").split(":") if d]
    config = environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(config):  # unset, empty or relative: ignored, as the spec says
        config = os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".config")
    return [*dirs, Path(config) / "ostream" / "presets"]


def is_path(name: str) -> bool:
    return "/" in name or name.endswith(".md")


def find_preset(name: str, environ: Mapping[str, str], what: str = "-p") -> Path:
    """The file `-p name` means, or a usage error saying where it was looked for."""
    if not name:
        raise UsageError(f"{what}: the preset name is empty")
    if is_path(name):
        path = Path(name)
        if path.is_dir() and (path / "system.md").is_file():
            return path / "system.md"
        if path.is_file():
            return path
        raise UsageError(f"{what} {name}: no such preset file")
    if name.startswith("."):
        raise UsageError(f"{what} {name}: a preset name does not start with a dot")
    dirs = search_path(environ)
    for directory in dirs:
        for candidate in (directory / f"{name}.md", directory / name / "system.md"):
            if candidate.is_file():
                return candidate
    looked = ":".join(str(d) for d in dirs)
    raise UsageError(f"{what} {name}: no preset {name}.md or {name}/system.md in {looked}")


def load_preset(name: str, environ: Mapping[str, str]) -> Preset:
    """The preset `-p name` means, read and parsed."""
    path = find_preset(name, environ)
    where = f"preset {path}"
    source = text(file_bytes(str(path), "-p", environ), where)
    shown = path.parent.name if path.name == "system.md" and not is_path(name) else name
    return parse_preset(source, shown, path)


def available(environ: Mapping[str, str]) -> Iterator[tuple[str, Path]]:
    """(name, file) of every preset on the search path, by name; a name found twice is
    the first one found, as -p NAME finds it."""
    seen: dict[str, Path] = {}
    for directory in search_path(environ):
        try:
            entries = sorted(directory.iterdir())
        except OSError:
            continue
        here: dict[str, Path] = {}
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.suffix == ".md" and entry.is_file():
                here[entry.stem] = entry  # NAME.md before NAME/system.md, as find_preset
            elif (entry / "system.md").is_file():
                here.setdefault(entry.name, entry / "system.md")
        for name, path in here.items():
            seen.setdefault(name, path)
    yield from sorted(seen.items())


# --------------------------------------------------------------------------- `ostream presets`


def listing(environ: Mapping[str, str], *, jsonl: bool) -> Iterator[bytes]:
    """`ostream presets`: a line per preset, `NAME  description` or a JSON object; a
    preset that does not parse is listed with its error rather than stopping the list."""
    from ostream.ndjson import compact

    rows = []
    for name, path in available(environ):
        row: dict[str, Any] = {"name": name, "path": str(path)}
        try:
            preset = parse_preset(text(file_bytes(str(path), "-p", environ), str(path)), name, path)
        except UsageError as exc:
            row["error"] = exc.message
        else:
            row.update(kind=preset.kind, description=preset.description, vars=preset.vars)
        rows.append(row)
    if jsonl:
        yield from (compact(row) for row in rows)
        return
    width = max((len(row["name"]) for row in rows), default=0)
    for row in rows:
        about = row.get("description") or row.get("error", "")
        yield f"{row['name']:<{width}}  {about}".rstrip().encode()


def shown(name: str, environ: Mapping[str, str]) -> bytes:
    """`ostream presets show NAME`: the file -p NAME would use, byte for byte."""
    path = find_preset(name, environ, "presets show")
    return file_bytes(str(path), "presets show", environ)

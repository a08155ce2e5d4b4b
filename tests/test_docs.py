"""The docs cannot drift: man page, README and `--help` against the commands Click knows.

The commands, options and arguments are walked on the Click objects Typer builds
(`typer.main.get_command(app)`); the rendered `--help` is read in-process through
CliRunner only for what is about its rendering. The README's ```sh blocks are run
in bash against ostream.testing (```console blocks are not run); a block
fenced as ```sh exit=N must exit N instead of 0.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import ostream
from ostream.cli import app
from ostream.errors import ExitCode
from ostream.testing import ECHO_PREFIX, FakeOllama

ROOT = Path(__file__).resolve().parent.parent
MAN = ROOT / "man" / "ostream.1"
README = ROOT / "README.md"
TOP = "ostream"  # the name the man page uses for the options of `ostream` itself
TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
)

EXIT_CODES = {int(code) for code in ExitCode}
BOX = re.compile("[\u2500-\u257f]")  # Rich panels and rules


# --------------------------------------------------------------------------- the Click objects

CLI = typer.main.get_command(app)
TOP_CONTEXT = CLI.make_context(TOP, [], resilient_parsing=True)
COMMANDS = tuple(name for name, command in CLI.commands.items() if not command.hidden)


def context(command: str) -> typer.Context:
    """The Click context of `command` (TOP: ostream itself), as a run would make it."""
    if command == TOP:
        return TOP_CONTEXT
    sub = CLI.commands[command]
    return sub.make_context(command, [], parent=TOP_CONTEXT, resilient_parsing=True)


def params(command: str, kind: str) -> list[Any]:
    """Every parameter Click knows for `command` (--help included), of `kind`
    ("option" or "argument")."""
    ctx = context(command)
    return [p for p in ctx.command.get_params(ctx) if p.param_type_name == kind]


def options(command: str) -> set[str]:
    """Each option as its --help column reads, from the object: "-m, --model NAME"."""
    ctx = context(command)
    return {
        record[0] for option in params(command, "option") if (record := option.get_help_record(ctx))
    }


def long_options(command: str) -> set[str]:
    return {
        name
        for option in params(command, "option")
        for name in (*option.opts, *option.secondary_opts)
        if name.startswith("--")
    }


# --------------------------------------------------------------------------- --help


@functools.cache
def help_text(command: str) -> str:
    """`--help` as a pipe gets it (CliRunner's output is not a terminal), colour-capable TERM."""
    args = ["--help"] if command == TOP else [command, "--help"]
    env = {"TERM": "xterm-256color", "NO_COLOR": None, "FORCE_COLOR": None}
    result = CliRunner().invoke(app, args, prog_name="ostream", env=env)
    assert result.exit_code == 0, result.output
    return result.output


def help_sections(text: str) -> dict[str, list[str]]:
    """`Options:`, `Commands:`, ... → their lines."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        heading = re.fullmatch(r"([A-Z][A-Za-z ]*):", line)
        if heading:
            current = sections.setdefault(heading.group(1), [])
        elif current is not None:
            current.append(line)
    return sections


def help_options(command: str) -> set[str]:
    """The option column of the rendered `--help`, e.g. "-m, --model NAME"."""
    lines = help_sections(help_text(command))["Options"]
    return {m.group(1) for line in lines if (m := re.match(r"  (-\S.*?)(?: {2,}|$)", line))}


def help_commands() -> set[str]:
    lines = help_sections(help_text(TOP))["Commands"]
    return {m.group(1) for line in lines if (m := re.match(r"  ([a-z][a-z0-9-]*)  +\S", line))}


# --------------------------------------------------------------------------- the man page

_ESCAPES = (
    ("\\-", "-"),
    ("\\(dq", '"'),
    ("\\(aq", "'"),
    ("\\(ha", "^"),
    ("\\(rs", "\\"),
    ("\\(bu", "*"),
    ("\\e", "\\"),
    ("\\&", ""),
)


def plain(line: str) -> str:
    """One roff line as the reader sees it: macros applied, fonts dropped, escapes resolved."""
    if line.startswith("."):
        macro, _, rest = line.partition(" ")
        args = [q if q else w for q, w in re.findall(r'"([^"]*)"|(\S+)', rest)]
        # .BR, .IR, .RB ... alternate fonts with no space between; .B and .I keep spaces.
        line = ("" if len(macro) == 3 else " ").join(args)
    line = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", line)
    for escape, char in _ESCAPES:
        line = line.replace(escape, char)
    return line


def man_sections() -> dict[str, list[str]]:
    """`.SH` title (as the reader sees it) → its roff lines, comments dropped."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in MAN.read_text(encoding="utf-8").splitlines():
        if line.startswith('.\\"'):
            continue
        if line.startswith(".SH"):
            current = sections.setdefault(plain(line[3:].strip()).strip('"'), [])
        elif current is not None:
            current.append(line)
    return sections


def tags(lines: list[str]) -> list[str]:
    """The tag line of every `.TP` item, as plain text."""
    return [plain(lines[i + 1]) for i, line in enumerate(lines[:-1]) if line == ".TP"]


def man_option_groups() -> list[tuple[set[str], list[str]]]:
    """OPTIONS subsections: (the commands named in "Title (generate, chat)", the tags)."""
    groups: list[tuple[set[str], list[str]]] = []
    subsection: list[str] = []
    for line in [*man_sections()["OPTIONS"], ".SS"]:
        if line.startswith(".SS"):
            if subsection:
                title = plain(subsection[0][3:].strip()).strip('"')
                named = re.search(r"\(([^)]*)\)$", title)
                assert named, f"OPTIONS subsection {title!r} must end in (command, ...)"
                groups.append(({c.strip() for c in named.group(1).split(",")}, tags(subsection)))
            subsection = [line]
        elif subsection:
            subsection.append(line)
    return groups


def man_options(command: str) -> set[str]:
    return {tag for named, group in man_option_groups() if command in named for tag in group}


# --------------------------------------------------------------------------- man page tests


def test_th_line_carries_the_package_version() -> None:
    th = next(line for line in MAN.read_text().splitlines() if line.startswith(".TH"))
    match = re.match(r'\.TH OSTREAM 1 \S+ "ostream ([^"]+)"', th)
    assert match, th
    assert match.group(1) == ostream.__version__


@pytest.mark.parametrize("command", [TOP, *COMMANDS])
def test_help_fits_80_columns(command: str) -> None:
    args = ["--help"] if command == TOP else [command, "--help"]
    result = CliRunner().invoke(app, args, prog_name="ostream", env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert [line for line in result.output.splitlines() if len(line) > 80] == []


@pytest.mark.parametrize("command", [TOP, *COMMANDS])
def test_every_argument_and_option_has_a_description(command: str) -> None:
    for param in [*params(command, "argument"), *params(command, "option")]:
        assert param.help, f"{command}: {param.name} has no help text"
        assert not getattr(param, "hidden", False), f"{command}: {param.name} is hidden"


def test_every_command_is_documented() -> None:
    assert help_commands() == set(COMMANDS)
    sections = man_sections()
    assert set(tags(sections["COMMANDS"])) == set(COMMANDS)
    synopsis = {plain(line) for line in sections["SYNOPSIS"]}
    for command in COMMANDS:
        assert f"ostream {command}" in synopsis


@pytest.mark.parametrize("command", COMMANDS)
def test_the_synopsis_gives_each_commands_usage(command: str) -> None:
    """`ostream generate [OPTIONS] [PROMPT]...`: the words Click's usage line has."""
    ctx = context(command)
    usage = ctx.command.collect_usage_pieces(ctx)
    synopsis = [plain(line) for line in man_sections()["SYNOPSIS"]]
    start = synopsis.index(f"ostream {command}")
    assert synopsis[start + 1 : start + 1 + len(usage)] == usage
    assert synopsis[start + 1 + len(usage)] == ""


@pytest.mark.parametrize("command", [TOP, *COMMANDS])
def test_help_shows_every_option_click_knows(command: str) -> None:
    assert help_options(command) == options(command)


@pytest.mark.parametrize("command", [TOP, *COMMANDS])
def test_man_options_are_exactly_those_click_knows(command: str) -> None:
    """Same options, same short forms, same metavars: "-m, --model NAME" in both."""
    known, documented = options(command), man_options(command)
    assert not known - documented, f"`{command}` has them but the man page does not"
    assert not documented - known, f"in the man page but not in `{command}`"


@pytest.mark.parametrize("command", [TOP, *COMMANDS])
def test_every_long_option_is_in_the_man_page_source(command: str) -> None:
    source = MAN.read_text()
    for name in long_options(command):
        assert name.replace("-", "\\-") in source, name


def test_every_long_option_the_man_page_mentions_exists() -> None:
    existing = set().union(*(long_options(c) for c in (TOP, *COMMANDS)))
    options = "\n".join(man_sections()["OPTIONS"])
    found = re.findall(r"\\-\\-[a-z](?:[a-z0-9]|\\-)*", options)
    mentioned = {name.replace("\\-", "-") for name in found}
    assert mentioned <= existing, mentioned - existing


def test_exit_status_lists_every_exit_code() -> None:
    documented = {int(tag) for tag in tags(man_sections()["EXIT STATUS"])}
    assert documented == EXIT_CODES


def test_options_in_the_man_source_use_escaped_hyphens() -> None:
    """A plain "-" renders as a hyphen (U+2010) on some systems: copied options would break."""
    for number, line in enumerate(MAN.read_text().splitlines(), 1):
        if line.startswith('.\\"'):
            continue
        unfonted = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", line)
        assert not re.search(r"(?<![\\\w])-[-\w]", unfonted), f"man/ostream.1:{number}: {line}"


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_groff_reports_no_warnings() -> None:
    result = subprocess.run(
        ["groff", "-man", "-ww", "-z", str(MAN)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert result.stderr == ""


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_man_page_fits_80_columns() -> None:
    """As `MANWIDTH=80 man` lays it out (man-db passes LL = width - 2)."""
    result = subprocess.run(
        ["groff", "-man", "-Tutf8", "-rLL=78n", str(MAN)],
        capture_output=True,
        timeout=30,
    )
    text = re.sub(r".\x08", "", result.stdout.decode("utf-8"))
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    long_lines = [line for line in text.splitlines() if len(line) > 80]
    assert not long_lines


# --------------------------------------------------------------------------- --help itself


@pytest.mark.parametrize("command", [TOP, *COMMANDS])
def test_help_is_plain_text_off_a_terminal(command: str) -> None:
    text = help_text(command)
    assert "\x1b" not in text
    assert not BOX.search(text)


def test_help_lists_every_exit_code() -> None:
    lines = help_sections(help_text(TOP))["Commands"]
    listed = {int(m.group(1)) for line in lines if (m := re.match(r"    (\d+)  ", line))}
    assert listed == EXIT_CODES


# --------------------------------------------------------------------------- the README


def readme_blocks() -> list[tuple[int, str, str]]:
    """(line number, info string, code) of every fenced block."""
    blocks: list[tuple[int, str, str]] = []
    lines = README.read_text(encoding="utf-8").splitlines()
    start: int | None = None
    info = ""
    for number, line in enumerate(lines, 1):
        if start is None and line.startswith("```"):
            start, info = number, line[3:].strip()
        elif start is not None and line.rstrip() == "```":
            blocks.append((start, info, "\n".join(lines[start : number - 1])))
            start = None
    assert start is None, f"README.md:{start}: unterminated code block"
    return blocks


SH_BLOCKS = [(n, info, code) for n, info, code in readme_blocks() if info.split()[:1] == ["sh"]]


def test_readme_has_the_setup_commands_ci_runs() -> None:
    text = README.read_text()
    assert TEST_COMMAND in text.splitlines()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv .venv" in ci
    assert "-e '.[test]'" in ci
    assert ".venv/bin/python -m pytest" in ci


def test_readme_exit_table_lists_every_exit_code() -> None:
    rows = re.findall(r"^\| (\d+) \|", README.read_text(), flags=re.MULTILINE)
    assert {int(code) for code in rows} == EXIT_CODES


def test_readme_names_every_command_and_variable() -> None:
    text = README.read_text()
    for command in COMMANDS:
        assert f"ostream {command}" in text
    for variable in tags(man_sections()["ENVIRONMENT"]):
        assert f"`{variable}`" in text, variable


@pytest.mark.parametrize("command", [TOP, *COMMANDS])
def test_readme_names_every_option_by_one_of_its_names(command: str) -> None:
    text = README.read_text()
    for option in params(command, "option"):
        names = [*option.opts, *option.secondary_opts]
        assert any(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text) for n in names), names


def test_readme_has_runnable_examples() -> None:
    assert len(SH_BLOCKS) >= 10
    for command in COMMANDS:
        assert any(f"ostream {command}" in code for _, _, code in SH_BLOCKS), command


BIN_DIR = Path(sys.executable).parent  # the venv's bin, where `ostream` is installed
TOOLS = ("jq", "git")


@dataclass
class Run:
    status: int
    out: str
    err: str


def _missing(code: str) -> str | None:
    """Why the block cannot run here, if it cannot."""
    if not (BIN_DIR / "ostream").exists():
        return f"ostream is not installed next to {sys.executable}"
    for tool in TOOLS:
        if re.search(rf"\b{tool}\b", code) and shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def _expected_output(code: str) -> str:
    if "/api/tags" in code or "ostream models" in code:
        return "llama3.1"
    if "/api/pull" in code or ("ostream pull" in code and "--jsonl" in code):
        return '"status":"success"'
    if "--dry-run" in code:
        return '"method":"POST"'
    if "ostream pull" in code or "ostream ps" in code:
        return ""  # a line on stderr; the fake has nothing loaded
    return ECHO_PREFIX.strip()  # also inside JSON lines: "response":"echo:"


def _workspace(directory: Path, code: str, env: dict[str, str]) -> None:
    """The files the examples take for granted."""
    (directory / "photo.png").write_bytes(
        bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")
    )
    if re.search(r"\bgit\b", code):
        (directory / "notes.txt").write_text("The sky is green.\n")
        for git in (["init", "-q"], ["add", "notes.txt"], ["commit", "-qm", "Notes"]):
            subprocess.run(["git", *git], cwd=directory, env=env, check=True, timeout=30)
        (directory / "notes.txt").write_text("The sky is blue.\n")


def _run_block(code: str, directory: Path, url: str) -> Run:
    """The block in bash, in its own directory, against the fake server at `url`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OLLAMA_", "OSTREAM_", "GIT_", "XDG_")) and k != "NO_COLOR"
    }
    env.update(
        OLLAMA_HOST=url,
        PATH=os.pathsep.join([str(BIN_DIR), env.get("PATH", os.defpath)]),
        HOME=str(directory),
        LC_ALL="C",  # the output is UTF-8 whatever the locale
        GIT_AUTHOR_NAME="A",
        GIT_AUTHOR_EMAIL="a@example.com",
        GIT_COMMITTER_NAME="A",
        GIT_COMMITTER_EMAIL="a@example.com",
        GIT_CONFIG_NOSYSTEM="1",
    )
    _workspace(directory, code, env)
    result = subprocess.run(
        ["bash", "-c", code],
        cwd=directory,
        env=env,
        stdin=subprocess.DEVNULL,  # as in cron: not a terminal, and empty
        capture_output=True,
        timeout=25,
    )
    return Run(
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )


@pytest.fixture(scope="module")
def readme_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, Run]]:
    """Every runnable ```sh block, run once, all at the same time (one fake server)."""
    runnable = [(n, code) for n, _, code in SH_BLOCKS if _missing(code) is None]
    with FakeOllama() as server, ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 2)) as pool:
        futures = {
            n: pool.submit(_run_block, code, tmp_path_factory.mktemp(f"readme{n}"), server.url)
            for n, code in runnable
        }
        yield {n: future.result() for n, future in futures.items()}


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("line", "info", "code"),
    [pytest.param(n, info, code, id=f"README.md:{n}") for n, info, code in SH_BLOCKS],
)
def test_readme_example_runs(readme_runs: dict[int, Run], line: int, info: str, code: str) -> None:
    reason = _missing(code)
    if reason is not None:
        pytest.skip(reason)
    run = readme_runs[line]
    status = re.search(r"\bexit=(\d+)", info)
    expected_status = int(status.group(1)) if status else 0
    shown = f"README.md:{line}\nstdout:\n{run.out}\nstderr:\n{run.err}"
    assert run.status == expected_status, shown
    assert "Traceback" not in run.err, shown
    if expected_status == 0:
        assert "ostream: error" not in run.err, shown
        assert _expected_output(code) in run.out, shown


# Result lines as a batch writes them, one whose failed job has a body that was not JSON.
BATCH_RESULTS = """\
{"id":"a","custom_id":"ok","response":{"status_code":200,"body":{"response":"Red.","eval_count":3}},"error":null,"host":"h1","attempts":1}
{"id":"b","custom_id":"chat","response":{"status_code":200,"body":{"message":{"role":"assistant","content":"Hi."},"eval_count":2}},"error":null,"host":"h2","attempts":1}
{"id":"c","custom_id":"proxy","response":{"status_code":502,"body":"<html>Bad gateway</html>"},"error":{"code":"server_error","message":"502"},"host":"h1","attempts":3}
{"id":"d","custom_id":"bad","response":null,"error":{"code":"invalid_request","message":"no"},"host":null,"attempts":0}
"""  # noqa: E501
JQ_RECIPES = [
    line
    for _, _, code in SH_BLOCKS
    for line in code.splitlines()
    if line.startswith("jq ") and "results.jsonl" in line
]


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
@pytest.mark.parametrize("recipe", JQ_RECIPES)
def test_readme_jq_recipes_survive_a_body_that_is_not_json(tmp_path: Path, recipe: str) -> None:
    (tmp_path / "results.jsonl").write_text(BATCH_RESULTS)
    result = subprocess.run(
        ["bash", "-c", recipe], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert (result.returncode, result.stderr) == (0, ""), recipe
    assert result.stdout.strip(), recipe


def test_try_it_without_ollama_shows_what_it_says(readme_runs: dict[int, Run]) -> None:
    """The demo starts its own fake: a streamed answer, then Ctrl-C, `| head`, a missing model."""
    [line] = [n for n, _, code in SH_BLOCKS if "python3 -m ostream.testing" in code]
    run = readme_runs[line]
    assert run.out.startswith("echo: Why is the sky blue?"), run.out
    statuses = re.findall(r" \(exit status: (\d+)\)$", run.out, flags=re.MULTILINE)
    assert statuses == ["130", "141", "4"], run.out + run.err
    assert "model 'nosuch' not found" in run.out


def test_the_man_page_is_installed_with_the_package() -> None:
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())
    data_files = project["tool"]["setuptools"]["data-files"]
    assert data_files["share/man/man1"] == ["man/ostream.1"]
    assert (root / "man" / "ostream.1").is_file()


# --------------------------------------------------------------------------- exit-code wording


def same_words(text: str) -> str:
    """`text` as words: spaces collapsed; a man page's capital and full stop forgiven."""
    words = " ".join(text.split()).removesuffix(".")
    return words[:1].lower() + words[1:]


MEANINGS = {int(code): code.meaning for code in ExitCode}


def test_help_exit_status_has_exit_code_meanings_word_for_word() -> None:
    text = help_text(TOP).split("Exit status:\n", 1)[1]
    rows = re.findall(r"^    (\d+) +(.*(?:\n {9}.*)*)", text, flags=re.MULTILINE)
    assert {int(code): same_words(meaning) for code, meaning in rows} == MEANINGS


def test_man_exit_status_has_exit_code_meanings_word_for_word() -> None:
    lines = [*man_sections()["EXIT STATUS"], ".TP"]
    starts = [i for i, line in enumerate(lines) if line == ".TP"]
    rows = {
        int(plain(lines[a + 1])): same_words(" ".join(plain(line) for line in lines[a + 2 : b]))
        for a, b in itertools.pairwise(starts)
    }
    assert rows == MEANINGS


def test_readme_exit_table_has_exit_code_meanings_word_for_word() -> None:
    rows = re.findall(r"^\| (\d+) \| (.*) \|$", README.read_text(), flags=re.MULTILINE)
    unmarked = {int(code): text.replace("`", "").replace("\\|", "|") for code, text in rows}
    assert unmarked == MEANINGS


# --------------------------------------------------------------------------- project files


def test_the_changelog_has_an_unreleased_section_then_one_for_this_version() -> None:
    headings = re.findall(r"^## (.+)$", (ROOT / "CHANGELOG.md").read_text(), flags=re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert ostream.__version__ in headings


def test_the_license_file_is_the_license_pyproject_names() -> None:
    named = re.search(r'^license = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert named and named.group(1) == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")


def test_ci_runs_ci_run_on_every_supported_python() -> None:
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "run: bash .ci/run" in workflow
    versions = re.search(r"python-version: \[([^]]*)\]", workflow)
    assert versions
    assert [v.strip().strip('"') for v in versions.group(1).split(",")] == [
        "3.10",
        "3.11",
        "3.12",
        "3.13",
    ]
    assert 'requires-python = ">=3.10"' in (ROOT / "pyproject.toml").read_text()

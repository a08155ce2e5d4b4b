"""What a run imports: never pydantic, the reason typer is kept below 0.29 (README), and
prompt_toolkit only in chat -i."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ostream.testing import FakeOllama
from tests.proc import env_for, run_python

# Runs ostream as `python -m ostream ARGS` would, then reports the modules it loaded.
_RUN_AND_REPORT = (
    "import sys, runpy; sys.argv = ['ostream', *sys.argv[1:]]\n"
    "try:\n    runpy.run_module('ostream', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    "sys.stderr.write('\\nloaded: ' + ' '.join(sorted(sys.modules)))"
)


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["generate", "--help"],
        ["generate", "-m", "m", "--think", "low", "-o", "seed=1", "--timeout", "9", "hi"],
        ["chat", "-m", "m", "--history", "HISTORY", "--retries", "0", "hi"],
    ],
    ids=["version", "generate-help", "generate", "chat"],
)
def test_a_run_never_imports_pydantic(
    fake_ollama: FakeOllama, tmp_path: Path, args: list[str]
) -> None:
    args = [str(tmp_path / "history.jsonl") if a == "HISTORY" else a for a in args]
    result = subprocess.run(
        [sys.executable, "-c", _RUN_AND_REPORT, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env_for(fake_ollama.url),
        timeout=30,
    )
    assert result.stdout.strip(), result.stderr  # it ran to the end: help, version or answer
    loaded = result.stderr.rpartition(b"\nloaded: ")[2].decode().split()
    assert "ostream.cli" in loaded
    pydantic = [name for name in loaded if name.split(".")[0] in ("pydantic", "pydantic_core")]
    assert not pydantic, "typer >= 0.29 loads pydantic: README, 'Why typer is below 0.29'"
    # The commands over several servers cost the others nothing: no rich, no fleet.
    fleet = [name for name in loaded if name.split(".")[0] == "rich" or name in FLEET_MODULES]
    assert not fleet, "only models/ps/pull load these"

    # prompt_toolkit is for chat -i alone: no other command pays for importing it.
    assert not [name for name in loaded if name.split(".")[0] == "prompt_toolkit"]
    assert not {"ostream.interactive", "ostream.lineinput", "ostream.slash"} & set(loaded)


FLEET_MODULES = ("ostream.fleet", "ostream.tables", "ostream.pull", "concurrent.futures")


_CONVENIENCES = ("ostream.presets", "ostream.extract", "ostream.outfile", "ostream.dryrun")


def _loaded(url: str, args: list[str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", _RUN_AND_REPORT, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env_for(url),
        timeout=30,
    )
    assert result.stdout.strip(), result.stderr
    return result.stderr.rpartition(b"\nloaded: ")[2].decode().split()


def test_generate_without_the_conveniences_does_not_load_them(fake_ollama: FakeOllama) -> None:
    """The start-up of a plain generate stays what it was: presets, -x, --output and
    --dry-run are imported only when asked for."""
    loaded = _loaded(fake_ollama.url, ["generate", "-m", "m", "hi"])
    assert "ostream.cli" in loaded
    assert not [name for name in loaded if name in _CONVENIENCES]


def test_generate_with_a_preset_loads_it(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    preset = tmp_path / "p.md"
    preset.write_text("Be brief.\n")
    loaded = _loaded(fake_ollama.url, ["generate", "-m", "m", "-p", str(preset), "hi"])
    assert "ostream.presets" in loaded


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["generate", "--help"]])
def test_version_and_help_do_not_import_requests(args: list[str]) -> None:
    result = run_python(_RUN_AND_REPORT, *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout
    loaded = result.stderr.rpartition(b"\nloaded: ")[2].decode().split()
    assert "ostream.cli" in loaded
    assert "requests" not in loaded

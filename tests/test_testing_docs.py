"""docs/testing.md cannot drift: its tables and its `# file:` examples, run."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ostream.testing import BEHAVIOURS, Sim
from ostream.testing.__main__ import parser

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "testing.md"
BIN_DIR = Path(sys.executable).parent  # the venv's bin: `ostream` and `python3`


def files() -> dict[str, str]:
    """The fenced blocks whose first line is `# file: NAME`, by name."""
    blocks = re.findall(r"^```\w*\n# file: (\S+)\n(.*?)^```$", GUIDE.read_text(), re.M | re.S)
    return dict(blocks)


def test_the_behaviour_table_is_the_one_in_the_code() -> None:
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (.*) \|$", GUIDE.read_text(), re.MULTILINE)
    assert dict(rows) == BEHAVIOURS


def test_every_simulation_knob_is_documented() -> None:
    text = GUIDE.read_text()
    options = {o for a in parser()._actions for o in a.option_strings if o.startswith("--")}
    hidden = {"--help", "--idle-timeout"}
    for option in options - hidden:
        assert option in text, option
    for knob in dataclasses.fields(Sim):
        if knob.name != "size":
            assert f"`{knob.name}`" in text, knob.name


@pytest.fixture
def workspace(tmp_path: Path) -> dict[str, str]:
    for name, code in files().items():
        (tmp_path / name).write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "OSTREAM_"))}
    env["PATH"] = os.pathsep.join([str(BIN_DIR), env.get("PATH", os.defpath)])
    return env


@pytest.mark.slow
def test_the_shell_script_example(tmp_path: Path, workspace: dict[str, str]) -> None:
    result = subprocess.run(
        ["sh", "test-summarize.sh"],
        cwd=tmp_path,
        env=workspace,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr


@pytest.mark.slow
def test_the_pytest_example(tmp_path: Path, workspace: dict[str, str]) -> None:
    assert {"conftest.py", "test_ask.py"} <= set(files())
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=workspace,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b5 passed\b", result.stdout), result.stdout

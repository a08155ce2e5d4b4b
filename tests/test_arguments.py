"""Text arguments are UTF-8 whatever the locale (a real process: argv is decoded by the
interpreter before ostream runs); file names still name the same files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ostream.testing import FakeOllama
from tests.proc import env_for, run

CAFE_UTF8 = "Café".encode()
CAFE_LATIN1 = "Café".encode("latin-1")


@pytest.fixture(scope="module")
def latin1_locale(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """LOCPATH and LC_ALL for an ISO-8859-1 locale made with localedef (none is
    installed here); skipped where localedef or its en_US sources are missing."""
    if shutil.which("localedef") is None:
        pytest.skip("no localedef to make a Latin-1 locale with")
    path = tmp_path_factory.mktemp("locale")
    made = subprocess.run(
        ["localedef", "-i", "en_US", "-f", "ISO-8859-1", str(path / "en_US.ISO-8859-1")],
        capture_output=True,
        check=False,
    )
    settings = {"LOCPATH": str(path), "LC_ALL": "en_US.ISO-8859-1"}
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"],
        capture_output=True,
        env={**env_for(""), **settings},
        check=False,
    )
    if made.returncode != 0 or probe.stdout.strip() != b"iso8859-1":
        pytest.skip("localedef could not make a Latin-1 locale here")
    return settings


def ostream(
    url: str, args: list[str | bytes], **settings: str
) -> subprocess.CompletedProcess[bytes]:
    return run(args, url, env=env_for(url, **settings))


def test_utf8_words_under_a_latin1_locale_are_sent_as_written(
    fake_ollama: FakeOllama, latin1_locale: dict[str, str]
) -> None:
    result = ostream(
        fake_ollama.url, ["generate", "-m", "m", "-s", CAFE_UTF8, CAFE_UTF8], **latin1_locale
    )
    assert result.returncode == 0, result.stderr
    sent = fake_ollama.requests[-1].json
    assert sent["prompt"] == "Café" and sent["system"] == "Café"


def test_words_that_are_not_utf8_are_refused_under_a_latin1_locale(
    fake_ollama: FakeOllama, latin1_locale: dict[str, str]
) -> None:
    result = ostream(fake_ollama.url, ["generate", "-m", "m", CAFE_LATIN1], **latin1_locale)
    assert result.returncode == 2
    assert result.stderr == (
        b"ostream: error: a word of the prompt is not valid UTF-8"
        b" (arguments are read as UTF-8 whatever the locale)\n"
    )
    assert fake_ollama.requests == []


def test_a_file_name_under_a_latin1_locale_still_names_its_file(
    fake_ollama: FakeOllama, latin1_locale: dict[str, str], tmp_path: Path
) -> None:
    image = tmp_path / "café.png"  # its name's bytes are UTF-8
    image.write_bytes(b"png")
    result = ostream(
        fake_ollama.url,
        ["generate", "-m", "m", "--image", bytes(image), CAFE_UTF8],
        **latin1_locale,
    )
    assert result.returncode == 0, result.stderr
    assert fake_ollama.requests[-1].json["images"] == ["cG5n"]


def test_the_c_locale_reads_words_as_utf8_and_refuses_other_bytes(
    fake_ollama: FakeOllama,
) -> None:
    result = ostream(
        fake_ollama.url, ["raw", "-d", b'{"model":"m","prompt":"' + CAFE_UTF8 + b'"}'], LC_ALL="C"
    )
    assert result.returncode == 0, result.stderr
    assert fake_ollama.requests[-1].json["prompt"] == "Café"
    result = ostream(fake_ollama.url, ["chat", "-m", "m", CAFE_LATIN1], LC_ALL="C")
    assert result.returncode == 2
    assert b"a word of the prompt is not valid UTF-8" in result.stderr

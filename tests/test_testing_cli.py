"""ostream.testing as a program (`python -m ostream.testing`), a pytest plugin, a package."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.rawhttp import generate, lines_of, request

ROOT = Path(__file__).resolve().parent.parent
URL = re.compile(r"http://127\.0\.0\.1:\d+")


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """`python -m ostream.testing ARGS`, and the URLs it printed (one line per --hosts)."""
    hosts = int(args[args.index("--hosts") + 1]) if "--hosts" in args else 1
    proc = subprocess.Popen(
        [sys.executable, "-m", "ostream.testing", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc, [proc.stdout.readline().strip() for _ in range(hosts)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("sig", "status"), [(signal.SIGTERM, 0), (signal.SIGINT, -signal.SIGINT)], ids=["TERM", "INT"]
)
def test_serves_until_a_signal_then_stops_quietly(sig: signal.Signals, status: int) -> None:
    with serving() as (proc, [url]):
        assert URL.fullmatch(url)
        body = generate(url, "m", "hi")[2]
        assert "".join(o["response"] for o in lines_of(body)) == "echo: hi"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
        # Ctrl-C: killed by SIGINT (a shell reports 130), so it stops a script running it too.
        assert (proc.returncode, out, err) == (status, "", "")


def test_hosts_prints_one_url_a_line_each_serving() -> None:
    with serving("--hosts", "3") as (proc, urls):
        assert len(set(urls)) == 3 and all(URL.fullmatch(u) for u in urls)
        for url in urls:
            assert request(url, "GET", "/api/version")[0] == 200
        proc.terminate()
        assert proc.communicate(timeout=10)[0] == ""


def test_simulation_options() -> None:
    args = ("--models", "a,b:7b", "--loaded", "a", "--reply-tokens", "5", "--token-rate", "5000")
    with serving(*args) as (proc, [url]):
        tags = json.loads(request(url, "GET", "/api/tags")[2])
        assert [m["name"] for m in tags["models"]] == ["a:latest", "b:7b"]
        ps = json.loads(request(url, "GET", "/api/ps")[2])
        assert [m["name"] for m in ps["models"]] == ["a:latest"]
        done = lines_of(generate(url, "a", "hi")[2])[-1]
        assert done["eval_count"] == 5
        assert generate(url, "c", "hi")[0] == 404  # not installed
        proc.terminate()
        assert proc.wait(10) == 0


def test_a_bad_option_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ostream.testing", "--reply-tokens", "x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "--reply-tokens" in result.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--port", "80000"], "--port"),
        (["--port", "-1"], "--port"),
        (["--port", "65535", "--hosts", "2"], "--port"),
        (["--hosts", "0"], "--hosts"),
        (["--token-rate", "0"], "--token-rate"),
        (["--token-rate", "-5"], "--token-rate"),
        (["--token-rate", "nan"], "--token-rate"),
        (["--prompt-rate", "0"], "--prompt-rate"),
        (["--reply-tokens", "10-5"], "--reply-tokens"),
        (["--reply-tokens", "-1"], "--reply-tokens"),
        (["--parallel", "0"], "--parallel"),
        (["--max-loaded", "0"], "--max-loaded"),
        (["--max-queue", "-1"], "--max-queue"),
        (["--load-time", "-1"], "--load-time"),
        (["--unload-time", "-1"], "--unload-time"),
    ],
)
def test_an_out_of_range_number_is_a_usage_error_naming_the_option(
    args: list[str], named: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a traceback (a port past 65535), nor a server that resets every request (a
    token rate of 0): exit 2 before anything is served, one error line naming the option."""
    from ostream.testing import __main__ as program

    def serve(*args: object, **kwargs: object) -> None:
        raise AssertionError("a server was started")

    monkeypatch.setattr(program, "FakeOllama", serve)
    main = program.main
    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and named in errors[0] and "Traceback" not in err


def test_the_pytest_plugin(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["ostream.testing"]\n')
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import json
            import urllib.request

            from ostream.testing import FakeOllama, Sim


            def test_fixture(fake_ollama: FakeOllama) -> None:
                body = json.dumps({"model": "m", "prompt": "hi", "stream": False}).encode()
                request = urllib.request.Request(fake_ollama.url + "/api/generate", data=body)
                with urllib.request.urlopen(request) as response:
                    assert json.load(response)["response"] == "echo: hi"
                assert fake_ollama.wait_for_request().json["prompt"] == "hi"


            def test_fleet(fake_fleet) -> None:
                fleet = fake_fleet(2, Sim(reply_tokens=(3, 3)))
                assert len(fleet.urls) == 2
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_not_loaded_into_everyones_pytest() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert "pytest11" not in text


def test_stdlib_only_and_the_cli_does_not_import_it() -> None:
    code = textwrap.dedent(
        """
        import sys
        before = set(sys.modules)
        import ostream.testing
        new = {m.split(".")[0] for m in set(sys.modules) - before}
        assert new - set(sys.stdlib_module_names) == {"ostream"}, new
        for name in [m for m in sys.modules if m.startswith("ostream")]:
            del sys.modules[name]
        import ostream.cli, ostream.__main__
        assert not [m for m in sys.modules if m.startswith("ostream.testing")]
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr

"""batch output: the result line, the assembled answer, whole-line writes, resume."""

from __future__ import annotations

import fcntl
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ostream.batch import writer as writer_module
from ostream.batch.ids import id_hash
from ostream.batch.results import Assembler, failure_line, is_success, success_line
from ostream.batch.writer import ResultWriter, open_output
from ostream.errors import ProtocolError, ServerError, UsageError
from tests.proc import ROOT


def test_a_success_line_has_openais_shape_plus_host_and_attempts() -> None:
    line = success_line("a1", 200, {"response": "héllo"}, host="http://h:11434", attempts=2)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    record = json.loads(line)
    assert list(record) == ["id", "custom_id", "response", "error", "host", "attempts"]
    assert record["id"].startswith("batch_req_")
    assert record["response"] == {"status_code": 200, "body": {"response": "héllo"}}
    assert (record["custom_id"], record["error"], record["host"], record["attempts"]) == (
        "a1",
        None,
        "http://h:11434",
        2,
    )
    assert "héllo".encode() in line  # characters kept, compact
    assert b": " not in line


def test_each_line_has_its_own_id() -> None:
    ids = {json.loads(success_line("a", 200, {}, host="h", attempts=1))["id"] for _ in range(50)}
    assert len(ids) == 50


def test_a_failed_line_without_an_answer_has_a_null_response() -> None:
    record = json.loads(failure_line("line-3", "invalid_request", "the line is not JSON"))
    assert record["response"] is None
    assert record["error"] == {"code": "invalid_request", "message": "the line is not JSON"}
    assert (record["host"], record["attempts"]) == (None, 0)
    assert not is_success(record)


def test_a_failed_line_keeps_the_servers_status_and_body() -> None:
    line = failure_line(
        "a", "server_error", "boom", status_code=500, body={"error": "boom"}, host="h", attempts=3
    )
    record = json.loads(line)
    assert record["response"] == {"status_code": 500, "body": {"error": "boom"}}
    assert record["attempts"] == 3


def test_a_newline_in_a_body_stays_inside_the_one_line() -> None:
    line = success_line("a", 200, {"response": "a\nb\u2028c"}, host="h", attempts=1)
    assert line.count(b"\n") == 1


def ndjson(*objects: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objects)


GENERATE = ndjson(
    {"model": "m", "response": "", "thinking": "Let me ", "done": False},
    {"model": "m", "response": "", "thinking": "think.", "done": False},
    {"model": "m", "response": "Hel", "done": False},
    {"model": "m", "response": "lo", "done": False},
    {
        "model": "m",
        "response": "!",
        "done": True,
        "done_reason": "stop",
        "context": [1, 2],
        "eval_count": 3,
    },
)


def test_a_generate_stream_becomes_the_non_streamed_answer() -> None:
    body = Assembler("generate").run([GENERATE])
    assert body == {
        "model": "m",
        "response": "Hello!",
        "thinking": "Let me think.",
        "done": True,
        "done_reason": "stop",
        "context": [1, 2],
        "eval_count": 3,
    }


def test_reads_of_any_size_give_the_same_answer() -> None:
    whole = Assembler("generate").run([GENERATE])
    for size in (1, 7, 64):
        chunks = [GENERATE[i : i + size] for i in range(0, len(GENERATE), size)]
        assert Assembler("generate").run(chunks) == whole


def test_a_chat_stream_becomes_one_whole_message() -> None:
    call_a = {"function": {"name": "a", "arguments": {"x": 1}}}
    call_b = {"id": "c2", "function": {"name": "b", "arguments": {}}}
    stream = ndjson(
        {"message": {"role": "assistant", "content": "", "thinking": "hmm"}, "done": False},
        {"message": {"role": "assistant", "content": "", "tool_calls": [call_a]}, "done": False},
        {"message": {"role": "assistant", "content": "ok", "tool_calls": [call_b]}, "done": False},
        {"message": {"role": "assistant", "content": "."}, "done": True, "eval_count": 2},
    )
    body = Assembler("chat").run([stream])
    assert body == {
        "message": {
            "role": "assistant",
            "content": "ok.",
            "thinking": "hmm",
            "tool_calls": [call_a, call_b],
        },
        "done": True,
        "eval_count": 2,
    }


def test_no_thinking_means_no_thinking_field_as_ollama_omits_it() -> None:
    stream = ndjson(
        {"message": {"role": "assistant", "content": "a"}, "done": False},
        {"message": {"role": "assistant", "content": "", "thinking": ""}, "done": True},
    )
    assert Assembler("chat").run([stream])["message"] == {"role": "assistant", "content": "a"}
    only_done = ndjson({"model": "m", "done": True, "done_reason": "load"})
    assert Assembler("generate").run([only_done]) == {
        "model": "m",
        "done": True,
        "done_reason": "load",
        "response": "",
    }


def test_logprobs_of_every_chunk_are_kept_in_order() -> None:
    stream = ndjson(
        {"response": "a", "logprobs": [{"token": "a"}], "done": False},
        {"response": "b", "logprobs": [{"token": "b"}], "done": True},
    )
    assert Assembler("generate").run([stream])["logprobs"] == [{"token": "a"}, {"token": "b"}]


def test_an_error_line_mid_stream_is_a_server_error() -> None:
    stream = ndjson({"response": "a", "done": False}, {"error": "out of memory"})
    with pytest.raises(ServerError, match="out of memory"):
        Assembler("generate").run([stream])


@pytest.mark.parametrize(
    "stream",
    [
        ndjson({"response": "a", "done": False}),
        ndjson({"response": "a", "done": False}) + b'{"response": "b", "do',
        b"",
    ],
    ids=["no-done", "cut-mid-line", "empty"],
)
def test_a_stream_cut_before_done_is_a_protocol_error(stream: bytes) -> None:
    with pytest.raises(ProtocolError, match=r"before the model finished|not JSON"):
        Assembler("generate").run([stream])


def test_a_line_that_is_not_json_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="not JSON"):
        Assembler("generate").run([b'{"response": "a", "done": false}\n<html>\n'])


def test_reading_stops_at_done() -> None:
    def chunks() -> Any:
        yield ndjson({"response": "a", "done": True})
        raise AssertionError("read past done")

    assert Assembler("generate").run(chunks())["response"] == "a"


# --- the writer --------------------------------------------------------------


def test_each_line_is_one_write_on_an_append_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(b"")
    writer, _ = open_output(str(path))
    assert os.O_APPEND & fcntl.fcntl(writer.fd, fcntl.F_GETFL)
    writes: list[bytes] = []
    real_write = os.write

    def spy(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    lines = [
        success_line(str(n), 200, {"response": "x" * n * 1000}, host="h", attempts=1)
        for n in range(5)
    ]
    for line in lines:
        writer.write(line)
    writer.close()
    assert writes == lines
    assert path.read_bytes() == b"".join(lines)


def test_a_short_write_is_finished_not_lost(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data)[:3]))
    writer = ResultWriter(fd, owns_fd=True)
    writer.write(b'{"custom_id":"a"}\n')
    writer.close()
    assert path.read_bytes() == b'{"custom_id":"a"}\n'


def test_fsync_every_n_lines_every_t_seconds_and_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    now = [0.0]
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    writer = ResultWriter(fd, owns_fd=True, sync_lines=3, sync_seconds=10, clock=lambda: now[0])
    for _ in range(7):
        writer.write(b"{}\n")
    assert len(synced) == 2  # after lines 3 and 6
    now[0] = 11.0
    writer.write(b"{}\n")  # 2 lines since, but 11 s
    assert len(synced) == 3
    writer.close()
    assert len(synced) == 3  # nothing new to sync
    writer2 = ResultWriter(os.open(tmp_path / "out", os.O_WRONLY | os.O_APPEND), owns_fd=True)
    writer2.write(b"{}\n")
    writer2.close()
    assert len(synced) == 4  # the end syncs what is left


def test_a_pipe_is_written_but_never_fsynced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", lambda fd: pytest.fail("fsync on a pipe"))
    read_end, write_end = os.pipe()
    writer = ResultWriter(write_end, sync_lines=1)
    writer.write(b"{}\n")
    writer.close()
    assert os.read(read_end, 10) == b"{}\n"
    os.close(read_end)
    os.close(write_end)  # not owned: left open by close()


def test_an_output_that_cannot_be_opened_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--output: cannot open"):
        open_output(str(tmp_path))  # a directory
    with pytest.raises(UsageError) as info:
        open_output(str(tmp_path / "missing" / "out.jsonl"))
    assert info.value.code == 2


# --- resume ------------------------------------------------------------------


def ok(custom_id: str) -> bytes:
    """A success line, the same for the same id (real ones differ in their "id")."""
    line = success_line(custom_id, 200, {"response": "r"}, host="h", attempts=1)
    return b'{"id":"batch_req_' + custom_id.encode() + b'"' + line[line.index(b",") :]


def failed(custom_id: str) -> bytes:
    return failure_line(custom_id, "server_error", "boom", status_code=500, body="x")


def test_resume_collects_the_successful_ids_and_appends(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(ok("a") + failed("b") + ok("c") + b"\n")
    writer, resume = open_output(str(path))
    assert id_hash("a") in resume.done and id_hash("c") in resume.done
    assert id_hash("b") not in resume.done  # a failed job runs again
    assert (resume.results, resume.foreign, resume.cut, len(resume.done)) == (3, 0, 0, 2)
    writer.write(ok("b"))
    writer.close()
    assert [json.loads(line)["custom_id"] for line in path.read_bytes().split(b"\n") if line] == [
        "a",
        "b",
        "c",
        "b",
    ]


@pytest.mark.parametrize("keep", [1, 10, 40, 100])
def test_a_torn_last_line_is_cut(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "out.jsonl"
    whole = ok("a") + failed("b")
    torn = ok("c")[:keep]
    path.write_bytes(whole + torn)
    writer, resume = open_output(str(path))
    assert path.read_bytes() == whole
    assert resume.cut == len(torn) and id_hash("c") not in resume.done
    assert (resume.results, resume.foreign) == (2, 0)
    writer.write(ok("c"))
    writer.close()
    assert path.read_bytes() == whole + ok("c")


def test_a_last_line_that_lost_only_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(ok("a") + ok("b")[:-1])
    _, resume = open_output(str(path))
    assert path.read_bytes() == ok("a") + ok("b")
    assert resume.completed and id_hash("b") in resume.done


def test_a_last_line_that_is_not_json_is_cut_earlier_ones_are_left(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(b"a note\n" + ok("a") + b"\0\0\0garbage\n")
    _, resume = open_output(str(path))
    assert path.read_bytes() == b"a note\n" + ok("a")
    assert (resume.foreign, resume.results, resume.cut) == (1, 1, 11)


def test_a_missing_output_is_created_and_an_empty_one_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    writer, resume = open_output(str(path))
    writer.close()
    assert path.exists() and len(resume.done) == 0 and resume.cut == 0


def test_a_fifo_output_is_only_appended_to(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    writer, resume = open_output(str(fifo))  # no scan: it would block
    writer.write(ok("a"))
    writer.close()
    assert os.read(reader, 1000) == ok("a")
    os.close(reader)
    assert len(resume.done) == 0


def test_resume_sync_defaults_are_sane() -> None:
    assert writer_module.SYNC_LINES >= 1 and writer_module.SYNC_SECONDS > 0


def test_two_runs_cannot_append_to_one_output(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    writer, _ = open_output(str(path))
    with pytest.raises(UsageError, match="being written by another run"):
        open_output(str(path))
    writer.close()
    again, _ = open_output(str(path))  # free once the first run closed it
    again.close()


_APPENDER = """
import sys
from ostream.batch.ids import id_hash
from ostream.batch.results import success_line
from ostream.batch.writer import open_output
writer, resume = open_output(sys.argv[1], sync_lines=5)
for n in range(int(sys.argv[2])):
    if id_hash(f"job-{n}") in resume.done:
        continue
    body = {"response": "x" * int(sys.argv[3])}
    writer.write(success_line(f"job-{n}", 200, body, host="h", attempts=1))
    sys.stdout.write(f"{n}\\n")
    sys.stdout.flush()
writer.close()
"""


def test_sigkill_at_random_moments_then_a_rerun_gives_every_id_once(tmp_path: Path) -> None:
    path, jobs = tmp_path / "out.jsonl", 40
    env = {**os.environ, "PYTHONPATH": ROOT}
    rng = random.Random(11)
    for _ in range(4):  # killed after a random number of lines (and maybe mid-line)
        child = subprocess.Popen(
            [sys.executable, "-c", _APPENDER, str(path), str(jobs), "100000"],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert child.stdout is not None
        for _ in range(rng.randrange(1, 6)):
            if not child.stdout.readline():
                break
        child.kill()
        child.wait(timeout=60)
        child.stdout.close()
    subprocess.run(
        [sys.executable, "-c", _APPENDER, str(path), str(jobs), "100000"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=120,
    )
    data = path.read_bytes()
    assert data.endswith(b"\n")
    ids = [json.loads(line)["custom_id"] for line in data.splitlines()]
    assert sorted(ids) == sorted(f"job-{n}" for n in range(jobs))  # each once, none lost

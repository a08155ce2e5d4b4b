"""`ostream batch`, part 1: the pure core, no HTTP, no CLI (CONTRACT.md, "batch").

How the pieces fit, for the scheduler and command built on top:

- `ids`: `id_hash(custom_id)` (first 8 bytes of SHA-256: stable, never 0) and
  `IdSet`, a set of such hashes at 8 bytes a slot. Every id the run must
  remember (duplicates, resume) is one of these, nothing more.
- `shard`: `parse_shard("I/N")` (UsageError, exit 2, when malformed) → `Shard`,
  which owns the ids with `id_hash % N == I`.
- `writer.open_output(path)` opens --output for O_APPEND, repairs a torn last
  line and returns the `ResultWriter` with a `resume.Resume` whose `done` holds
  the ids already successful; without --output use `ResultWriter(1)` (stdout,
  never fsync'ed unless it is a regular file). Do this before reading INPUT.
  (Check that --output is not INPUT itself: same st_dev/st_ino.)
- `jobs.JobReader(binary_file, text=..., defaults=jobs.Defaults(...),
  done=resume.done, shard=..., render=...)` yields `Job`s lazily, in input order
  (`render`: a prompt-kind preset's, making each --text line's prompt). A Job with
  `error` set cannot run: write `results.failure_line(job.custom_id,
  results.INVALID_REQUEST, job.error)` for it, in its place in the order. Others
  have `url`, `body` (defaults filled in), `model`; send `jobs.wire_body(job)`
  (it forces streaming for /api/generate and /api/chat, none for /v1/*).
  The reader counts `read`, `skipped` (done already) and `elsewhere` (other
  shards) for the progress display.
- `order.Reorder(window, ordered=not unordered)`: `admit()` a ticket per job
  dispatched (invalid ones too), only while `can_admit()`; `finish(ticket,
  line)` returns the lines to write now. On SIGINT/SIGTERM, after closing the
  requests in flight, write `drain()` (the finished ones still waiting).
- `results`: for /api/generate and /api/chat feed the streamed response body to
  `results.Assembler("generate"|"chat").run(chunks)` (the same ndjson framing as
  the other commands; ServerError for an error line, ProtocolError for a cut
  stream); other URLs' bodies are taken as they are. Then
  `success_line(custom_id, 200, body, host=base_url, attempts=n)` or
  `failure_line(custom_id, code, message, status_code=..., body=..., host=...,
  attempts=...)` with the code from the failure map.
- `ResultWriter.write(line)` writes each line in one write(2) and fsyncs at
  intervals; `close()` at the end (also on interrupt) does the final fsync.
"""

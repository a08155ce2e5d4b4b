"""In-process cost of ostream's hot path: recorded reads through Streamer, no network.

    python bench/hotpath.py [CHUNKS]

Two framings: one line per read (what Ollama's one-line HTTP chunks become) and
64 KiB reads of many lines. Only framing, parsing and rendering are timed, for
text mode and --jsonl, best of 5 in CPU time; the whole-process comparison with other
clients is bench/bench.py. Profile with `python -m cProfile -s tottime bench/hotpath.py`.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ostream.output import Streams, Writer
from ostream.stream import Streamer

LINE = b'{"model":"m","created_at":"2026-11-24T14:00:00.000000Z","response":"tok ","done":false}\n'
DONE = b'{"model":"m","created_at":"2026-11-24T14:00:00.000000Z","response":"","done":true}\n'


class Sink(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return len(data)


def seconds(reads: list[bytes], jsonl: bool) -> float:
    best = float("inf")
    for _ in range(5):
        streams = Streams(io.BufferedWriter(Sink()), io.BufferedWriter(Sink()), False, False, False)
        streamer = Streamer(
            "generate", Writer(streams), jsonl=jsonl, show_thinking=True, keep=False
        )
        start = time.process_time()
        streamer.run(reads)
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    chunks = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    body = LINE * chunks + DONE
    framings = {
        "1 line/read": [LINE] * chunks + [DONE],
        "64 KiB reads": [body[i : i + 65536] for i in range(0, len(body), 65536)],
    }
    for framing, reads in framings.items():
        for name, jsonl in (("text", False), ("--jsonl", True)):
            took = seconds(reads, jsonl)
            print(
                f"{framing:13} {name:8} {chunks:,} chunks  {took:.3f} s  "
                f"{chunks / took:,.0f} chunks/s  {took / chunks * 1e6:.2f} µs/chunk"
            )


if __name__ == "__main__":
    main()

"""In-process cost of ostream's hot path: recorded 64 KiB reads through Streamer.

    python bench/hotpath.py [CHUNKS]

No network and no process start-up: only framing, parsing and rendering, for the
text and --jsonl modes (best of 5). The whole-process comparison with other
clients is bench/bench.py.
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
        start = time.perf_counter()
        streamer.run(reads)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    chunks = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    body = LINE * chunks + DONE
    reads = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    for name, jsonl in (("text", False), ("--jsonl", True)):
        took = seconds(reads, jsonl)
        print(
            f"{name:8} {chunks:,} chunks  {took:.3f} s  {chunks / took:,.0f} chunks/s  "
            f"{took / chunks * 1e6:.2f} µs/chunk"
        )


if __name__ == "__main__":
    main()

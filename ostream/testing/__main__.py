"""``python -m ostream.testing``: serve fake Ollama servers until stopped; print their URLs.

SIGTERM stops them and exits 0; Ctrl-C (SIGINT) stops them quietly and exits as killed
by SIGINT (status 130), so that Ctrl-C also stops a script running it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from ostream.testing.fake import FakeOllama
from ostream.testing.sim import Sim

MAX_PORT = 65535
SIM_KNOBS = (
    "parallel",
    "max_queue",
    "token_rate",
    "prompt_rate",
    "models",
    "loaded",
    "max_loaded",
    "load_time",
    "unload_time",
    "reply_tokens",
    "seed",
)


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    try:
        span = (int(low), int(high)) if sep else (int(low), int(low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not N or LOW-HIGH: {text!r}") from None
    if span[0] < 0 or span[0] > span[1]:
        raise argparse.ArgumentTypeError(f"LOW-HIGH needs 0 <= LOW <= HIGH: {text!r}")
    return span


def _number(kind: type[int] | type[float], low: float, *, above: bool = False) -> Any:
    """An argparse type: a `kind` of at least `low` (`above`: more than `low`)."""
    bound = f"more than {low:g}" if above else f"at least {low:g}"

    def convert(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value > low if above else value >= low) or value != value:  # NaN too
            raise argparse.ArgumentTypeError(f"must be {bound}, not {text}")
        return value

    convert.__name__ = kind.__name__
    return convert


def _port(text: str) -> int:
    port = _number(int, 0)(text)
    if port > MAX_PORT:
        raise argparse.ArgumentTypeError(f"must be 0 to {MAX_PORT}, not {text}")
    return int(port)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ostream.testing",
        description="Serve fake Ollama servers on 127.0.0.1 and print their URLs, one a line. "
        "Any simulation option turns on the simulator (real timing, slots, queue, models); "
        "without one, answers are immediate and the model name picks a behaviour.",
        epilog="Ctrl-C stops them (exit 130), SIGTERM too (exit 0). See docs/testing.md.",
    )
    p.add_argument("--port", type=_port, default=0, help="first port (default: any free ones)")
    p.add_argument(
        "--hosts", type=_number(int, 1), default=1, metavar="K", help="how many servers (1)"
    )
    p.add_argument("--idle-timeout", type=float, default=30.0, help=argparse.SUPPRESS)
    sim = p.add_argument_group("simulation (per server)")
    sim.add_argument("--simulate", action="store_true", help="simulate with the defaults below")
    sim.add_argument("--parallel", type=_number(int, 1), help="slots per loaded model (1)")
    sim.add_argument("--max-queue", type=_number(int, 0), help="waiting requests before 503 (512)")
    sim.add_argument(
        "--token-rate", type=_number(float, 0, above=True), help="tokens/s per slot (2000)"
    )
    sim.add_argument(
        "--prompt-rate", type=_number(float, 0, above=True), help="prompt tokens/s (20000)"
    )
    sim.add_argument("--models", type=_names, help="installed models, comma-separated")
    sim.add_argument("--loaded", type=_names, help="models loaded at start, comma-separated")
    sim.add_argument("--max-loaded", type=_number(int, 1), help="models loaded at once (1)")
    sim.add_argument("--load-time", type=_number(float, 0), help="seconds to load a model (0)")
    sim.add_argument("--unload-time", type=_number(float, 0), help="seconds to unload one (0)")
    sim.add_argument("--reply-tokens", type=_range, metavar="LOW-HIGH", help="reply length (20-60)")
    sim.add_argument("--seed", type=int, help="seed of the reply lengths (0)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.port and args.port + args.hosts - 1 > MAX_PORT:
        parser().error(f"--port {args.port} --hosts {args.hosts}: the ports would pass {MAX_PORT}")
    knobs = {k: getattr(args, k) for k in SIM_KNOBS if getattr(args, k) is not None}
    sim = Sim(**knobs) if knobs or args.simulate else None
    stop = threading.Event()
    got: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        got.append(signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    servers = []
    try:
        for i in range(args.hosts):
            port = args.port + i if args.port else 0
            servers.append(FakeOllama(port, idle_timeout=args.idle_timeout, sim=sim).start())
        with contextlib.suppress(OSError):
            print("\n".join(server.url for server in servers), flush=True)
        while not stop.is_set():
            stop.wait(0.2)
    except OSError as exc:
        print(f"python -m ostream.testing: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        for server in servers:
            server.stop()
    if got and got[0] == signal.SIGINT:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""FakeOllama: one fake server on 127.0.0.1, scripted, recorded, and killable."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ostream.testing.behaviours import BUSY_MESSAGE
from ostream.testing.events import Recorded, Reply
from ostream.testing.replies import error_reply
from ostream.testing.routes import Routes
from ostream.testing.scheduler import Counters
from ostream.testing.server import HTTPServer
from ostream.testing.sim import Sim, Simulator


class FakeOllama:
    """A fake Ollama on 127.0.0.1 (daemon threads). Use as a context manager.

    ``sim``: simulate a real server's timing (see :class:`Sim`); without it every
    answer is immediate. ``requests`` holds every request received, in order."""

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        idle_timeout: float = 30.0,
        sim: Sim | None = None,
    ):
        self.host = host
        self._port = port
        self.idle_timeout = idle_timeout
        self.requests: list[Recorded] = []
        self.sim: Simulator | None = None
        self._sim_config = sim
        self._cond = threading.Condition()
        self._scripts: dict[str | None, deque[Reply]] = {}
        self._stopping = threading.Event()
        self._dead = threading.Event()
        self._die_after: int | None = None
        self._refuse_until = 0.0
        self._timers: list[threading.Timer] = []
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()
        self._busy_once_done = False
        self._routes = Routes(self)

    # ---- lifecycle

    def start(self) -> FakeOllama:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._dead.clear()
        self._server = HTTPServer((self.host, self._port), self)
        self._port = int(self._server.server_address[1])
        if self._sim_config is not None:
            self.sim = Simulator(self._sim_config)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"fake-ollama:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        for timer in self._timers:
            timer.cancel()
        if self.sim is not None:
            self.sim.stop()
        if server is None:
            return
        self._stopping.set()
        if not self._dead.is_set():
            server.shutdown()
            server.server_close()
        with self._conns_lock:
            conns = dict(self._conns)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(2)
        deadline = time.monotonic() + 2
        for thread in conns.values():
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    # ---- faults

    def _later(self, at: float | None, action: Callable[[], None]) -> None:
        if at is None or at <= 0:
            action()
            return
        timer = threading.Timer(at, action)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def die(self, at: float | None = None, *, after_requests: int | None = None) -> None:
        """The server dies: it stops accepting connections (they are refused) and resets
        every open one, mid-stream or idle. Now, in ``at`` seconds, or when request
        ``after_requests + 1`` arrives (the first ``after_requests`` are served)."""
        if after_requests is not None:
            with self._cond:
                self._die_after = after_requests
                if len(self.requests) <= after_requests:
                    return
        self._later(at, self._kill)

    def _kill(self) -> None:
        if self._dead.is_set():
            return
        self._dead.set()
        server = self._server
        if server is not None:
            server.shutdown()
            server.server_close()

    def slow_down(self, factor: float, at: float | None = None) -> None:
        """Simulated servers only: every time (tokens, prompt, load) becomes ``factor``
        times longer for requests that start from now (or in ``at`` seconds)."""
        if self.sim is None:
            raise ValueError("slow_down needs a simulated server: FakeOllama(sim=Sim(...))")
        sim = self.sim
        self._later(at, lambda: sim.slow_down(factor))

    def refuse(self, seconds: float, at: float | None = None) -> None:
        """Answer 503 `server busy` to every generation request for ``seconds``."""

        def apply() -> None:
            self._refuse_until = time.monotonic() + seconds

        self._later(at, apply)

    @property
    def counters(self) -> Counters:
        """What the simulation did so far (a snapshot). Plain servers count nothing."""
        return Counters() if self.sim is None else self.sim.counters()

    @property
    def waiting(self) -> int:
        """Simulated servers: how many requests wait for a slot now (0 for plain ones)."""
        return 0 if self.sim is None else self.sim.scheduler.waiting()

    # ---- scripting and inspection

    def script(self, reply: Reply, path: str | None = "/api/generate") -> None:
        """Queue `reply` for the next request to `path` (FIFO per path; None = any path).

        A queue for the exact path is used before the any-path queue."""
        with self._cond:
            self._scripts.setdefault(path, deque()).append(reply)

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[Recorded]:
        """Block until at least `n` requests arrived; return the first `n`."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= n, timeout):
                raise TimeoutError(
                    f"{len(self.requests)} request(s) arrived within {timeout}s, wanted {n}"
                )
            return self.requests[:n]

    def wait_for_request(self, timeout: float = 5.0) -> Recorded:
        """Block until a request arrived; return the first one."""
        return self.wait_for_requests(1, timeout)[0]

    # ---- used by the server and the routes

    def _register(self, sock: socket.socket) -> None:
        with self._conns_lock:
            self._conns[sock] = threading.current_thread()

    def _unregister(self, sock: socket.socket) -> None:
        with self._conns_lock:
            self._conns.pop(sock, None)

    def _reply_for(self, rec: Recorded, wait: Callable[[threading.Event], None]) -> Reply:
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()
            dying = self._die_after is not None and len(self.requests) > self._die_after
            reply = None
            for key in (rec.path, None):
                queue = self._scripts.get(key)
                if queue:
                    reply = queue.popleft()
                    break
        if dying:
            self._kill()
        if reply is not None:
            return reply
        return self._routes.reply(rec, wait)

    def _refusing(self, model: str) -> Reply | None:
        if time.monotonic() < self._refuse_until:
            if self.sim is not None:
                self.sim.count_rejected()
            return error_reply(503, BUSY_MESSAGE)
        return None

    def _first_busy(self) -> bool:
        with self._cond:
            first, self._busy_once_done = not self._busy_once_done, True
        return first

    def _loaded(self) -> list[dict[str, Any]]:
        """/api/ps: the loaded models."""
        if self.sim is None:
            return []
        size = self.sim.sim.size
        return [
            {
                "name": runner.model,
                "model": runner.model,
                "size": size,
                "digest": "46e0c10c039e019119339687c3c1757cc81b9da49709a3b3924863ba87ca666e",
                "details": {"format": "gguf", "family": "llama", "parameter_size": "8.0B"},
                "expires_at": "2099-01-01T00:00:00Z",
                "size_vram": size,
                "context_length": 4096,
            }
            for runner in self.sim.scheduler.loaded()
        ]

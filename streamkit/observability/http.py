"""Health state and the HTTP endpoint serving /metrics, /healthz and /readyz.

The server is a stdlib ``ThreadingHTTPServer`` on a daemon thread: it needs no event loop,
so a blocked asyncio loop or a stuck poll loop cannot also take down the probes that are
meant to report it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

__all__ = ["HealthState", "HttpServerHandle", "serve_http"]

Clock = Callable[[], float]


class HealthState:
    """Liveness and readiness of one consumer, shared between the poll loop and probes.

    ``healthz`` fails when the poll loop has not called :meth:`beat` for ``stall_after``
    seconds (the orchestrator should restart the process), when :meth:`set_failed` was
    called, when no beat arrived within ``start_grace`` seconds of creation, or when a
    retry/DLQ publish has kept failing for ``stall_after`` seconds (its partition cannot
    move: a missing ACL, a deleted DLQ).
    ``readyz`` additionally requires :meth:`set_ready(True) <set_ready>`.
    """

    def __init__(
        self,
        stall_after: float = 60.0,
        start_grace: float | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self._stall_after = stall_after
        # Joining a group can take a session timeout or two; by default allow as much as
        # a stall before calling a process that never polled unhealthy.
        self._start_grace = stall_after if start_grace is None else start_grace
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last_beat: float | None = None
        self._ready = False
        self._not_ready_reason = "not ready: no partition assignment yet"
        self._failed: str | None = None
        self._publish_problems: dict[object, tuple[float, str]] = {}  # key -> (since, why)

    def publish_problem(self, key: object, reason: str | None) -> None:
        """A retry/DLQ publish for ``key`` is failing (``reason``) or recovered (None)."""
        now = self._clock()
        with self._lock:
            if reason is None:
                self._publish_problems.pop(key, None)
            elif key not in self._publish_problems:
                self._publish_problems[key] = (now, reason)

    def beat(self) -> None:
        """Record that the poll loop is alive; called once per poll iteration."""
        now = self._clock()
        with self._lock:
            self._last_beat = now

    def set_ready(self, ready: bool, reason: str | None = None) -> None:
        """Mark the consumer ready (joined, assignment received) or not, with a reason."""
        with self._lock:
            self._ready = ready
            if not ready:
                self._not_ready_reason = reason or "not ready"

    def set_failed(self, reason: str) -> None:
        """Mark the process failed for good; both probes report ``reason`` from now on."""
        with self._lock:
            self._failed = reason

    def healthz(self) -> tuple[bool, str]:
        """Return ``(healthy, reason)``; the reason is ``"ok"`` when healthy."""
        now = self._clock()
        with self._lock:
            return self._liveness(now)

    def readyz(self) -> tuple[bool, str]:
        """Return ``(ready, reason)``: healthy and marked ready."""
        now = self._clock()
        with self._lock:
            healthy, reason = self._liveness(now)
            if not healthy:
                return False, reason
            if not self._ready:
                return False, self._not_ready_reason
            return True, "ok"

    def _liveness(self, now: float) -> tuple[bool, str]:
        if self._failed is not None:
            return False, f"failed: {self._failed}"
        if self._last_beat is None:
            waited = now - self._started
            if waited > self._start_grace:
                return False, f"poll loop has not started after {waited:.1f}s"
            return True, "ok"
        silent = now - self._last_beat
        if silent > self._stall_after:
            return False, f"poll loop stalled for {silent:.1f}s"
        if self._publish_problems:
            since, why = min(self._publish_problems.values())
            if now - since > self._stall_after:
                return False, f"{why} (for {now - since:.0f}s)"
        return True, "ok"


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer carrying the registry and health state for its handlers."""

    daemon_threads = True  # a hung scrape must not block interpreter exit

    def __init__(
        self, address: tuple[str, int], registry: CollectorRegistry, health: HealthState
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.registry = registry
        self.health = health
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Routes GET requests to /metrics, /healthz and /readyz."""

    server: _Server

    def do_GET(self) -> None:
        """Serve one probe or scrape."""
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._metrics()
        elif path == "/healthz":
            self._probe(*self.server.health.healthz())
        elif path == "/readyz":
            self._probe(*self.server.health.readyz())
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

    def _metrics(self) -> None:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        try:
            body = encoder(self.server.registry)
        except Exception as exc:  # a broken custom collector must not kill the probe thread
            message = f"metrics collection failed: {type(exc).__name__}: {exc}\n"
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, message.encode(), "text/plain")
            return
        self._send(HTTPStatus.OK, body, content_type)

    def _probe(self, ok: bool, reason: str) -> None:
        status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
        self._send(status, f"{reason}\n".encode(), "text/plain; charset=utf-8")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: a scrape every 15s must not write a line to stderr each time."""


class HttpServerHandle:
    """A running endpoint: ``port`` is the bound port, :meth:`close` stops it."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.host: str = str(server.server_address[0])
        self.port: int = int(server.server_address[1])

    def close(self) -> None:
        """Stop serving, close the socket and wait briefly for the thread to end."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HttpServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def serve_http(
    port: int,
    registry: CollectorRegistry,
    health: HealthState,
    host: str = "0.0.0.0",  # probes and scrapes come from outside the pod
) -> HttpServerHandle:
    """Serve /metrics, /healthz and /readyz on a daemon thread; port 0 binds a free port."""
    server = _Server((host, port), registry, health)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.2},
        name=f"streamkit-http:{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return HttpServerHandle(server, thread)

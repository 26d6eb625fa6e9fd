"""Run a :class:`streamkit.Worker` in a background thread for in-process integration tests."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from streamkit import Router, Settings, Worker
from tests.integration.helpers import wait_until


class RunningWorker:
    """``with RunningWorker(router, settings) as w:`` -- started, ready, then stopped."""

    def __init__(
        self,
        router: Router,
        settings: Settings,
        ready_timeout: float = 30,
        worker_cls: type[Worker] = Worker,
    ) -> None:
        self.worker = worker_cls(router, settings)
        self.ready_timeout = ready_timeout
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self.worker.run())
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def start(self) -> RunningWorker:
        self._thread.start()
        wait_until(
            lambda: self.worker.health.readyz()[0] or not self._thread.is_alive(),
            self.ready_timeout,
            "the worker to join its group",
        )
        if self.error is not None:
            raise self.error
        return self

    def stop(self, timeout: float = 60) -> None:
        self.worker.stop()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "worker did not stop in time"
        if self.error is not None:
            raise self.error

    def __enter__(self) -> RunningWorker:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def settings(bootstrap: str, group: str, topics: list[str], **extra: object) -> Settings:
    """Test settings: no metrics port, fast commits."""
    return Settings(
        bootstrap_servers=bootstrap,
        group_id=group,
        topics=topics,
        metrics_port=0,
        **{"commit_interval": 0.2, **extra},  # type: ignore[arg-type]
    )

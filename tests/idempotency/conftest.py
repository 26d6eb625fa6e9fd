"""Real PostgreSQL and Redis for the idempotency tests, session-scoped.

In order: ``STREAMKIT_TEST_POSTGRES`` / ``STREAMKIT_TEST_REDIS`` (a DSN / URL) if set;
testcontainers when ``STREAMKIT_TEST_CONTAINERS=1`` (Docker users; not run here); else
``scripts/postgres-local`` / ``scripts/redis-local`` (Debian's packages, bound to
127.0.0.1, state in the repo's ignored folders), stopped at the end if this session
started them. Without one, the tests fail under CI and skip locally.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import IN_CI, ROOT

CONTAINERS = os.environ.get("STREAMKIT_TEST_CONTAINERS") == "1"


class LocalServer:
    """A ``scripts/NAME`` server (start|stop|status): its address, and stop/start for outages."""

    def __init__(self, script: str, address: str = "", owned: bool = True) -> None:
        self.script = script
        self.address = address
        self.owned = owned  # ours to stop and start (not a given URL or a container)

    def run(self, command: str) -> str:
        done = subprocess.run(
            [str(ROOT / "scripts" / self.script), command],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{self.script} {command}: {done.stderr.strip()[-500:]}")
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""

    def running(self) -> bool:
        try:
            self.run("status")
        except RuntimeError:
            return False
        return True

    def stop(self) -> None:
        self.run("stop")

    def start(self) -> str:
        self.address = self.run("start")
        return self.address


def _local(script: str) -> Iterator[LocalServer]:
    server = LocalServer(script)
    was_running = server.running()
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        if IN_CI:
            pytest.fail(f"no {script}: {exc}", pytrace=False)
        pytest.skip(f"no {script}: {exc}")
    yield server
    if not was_running:
        server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalServer]:
    """A real PostgreSQL: ``.address`` is its DSN."""
    given = os.environ.get("STREAMKIT_TEST_POSTGRES")
    if given:
        yield LocalServer("postgres-local", given, owned=False)
    elif CONTAINERS:  # pragma: no cover - Docker users only
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:15", driver=None) as pg:
            yield LocalServer("postgres-local", pg.get_connection_url(), owned=False)
    else:
        yield from _local("postgres-local")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalServer]:
    """A real Redis: ``.address`` is its URL; ``stop()``/``start()`` when ``owned``."""
    given = os.environ.get("STREAMKIT_TEST_REDIS")
    if given:
        yield LocalServer("redis-local", given, owned=False)
    elif CONTAINERS:  # pragma: no cover - Docker users only
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7") as rc:
            url = f"redis://{rc.get_container_host_ip()}:{rc.get_exposed_port(6379)}/0"
            yield LocalServer("redis-local", url, owned=False)
    else:
        yield from _local("redis-local")

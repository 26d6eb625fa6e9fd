"""Shared fixtures: a real Kafka broker for integration tests, unique topics per test.

Broker, in order: ``STREAMKIT_TEST_BOOTSTRAP`` if set; a testcontainers Kafka if a Docker
engine answers; else ``scripts/kafka-local``. With none, integration tests fail under CI
(``CI=true``) and skip locally.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

# In-process workers log through stdlib logging (captured by pytest), never straight to
# stdout, where a worker of another test could land inside a CLI command's JSON output.
structlog.configure(
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    processors=[structlog.stdlib.add_log_level, structlog.processors.KeyValueRenderer()],
)

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _kafka_local(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "kafka-local"), command],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _no_broker(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"no Kafka broker for integration tests: {reason}", pytrace=False)
    pytest.skip(f"no Kafka broker: {reason}")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a real broker for the whole session."""
    given = os.environ.get("STREAMKIT_TEST_BOOTSTRAP")
    if given:
        yield given
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    was_running = _kafka_local("status").returncode == 0
    started = _kafka_local("start")
    if started.returncode != 0:
        _no_broker(f"scripts/kafka-local start failed: {started.stderr.strip()[-500:]}")
    yield started.stdout.strip().splitlines()[-1]
    if not was_running:
        _kafka_local("stop")


@pytest.fixture(scope="session")
def admin(kafka_bootstrap: str):  # type: ignore[no-untyped-def]
    """A session-wide admin client."""
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic and group names."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def make_topic(admin, unique: str) -> Iterator[Callable[..., str]]:  # type: ignore[no-untyped-def]
    """Create topics unique to this test; they are deleted afterwards."""
    from confluent_kafka.admin import NewTopic

    created: list[str] = []

    def make(name: str = "t", partitions: int = 3, config: dict[str, str] | None = None) -> str:
        topic = f"{name}-{unique}"
        futures = admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})])
        futures[topic].result(30)
        created.append(topic)
        return topic

    yield make
    # Also remove what the test derived from its topics (retry tiers, DLQs): same suffix.
    existing = admin.list_topics(timeout=10).topics
    doomed = sorted({t for t in existing if unique in t} | set(created) & set(existing))
    if doomed:
        for future in admin.delete_topics(doomed, operation_timeout=30).values():
            # Already deleted by the test itself, or the broker is gone: nothing to clean.
            with contextlib.suppress(Exception):
                future.result(30)


# -- schema registry ----------------------------------------------------------------------


class LocalRegistry:
    """The registry of ``scripts/schema-registry-local``: its URL, and stop/start for
    outage tests (its H2 file storage keeps schema ids over a restart)."""

    def __init__(self, url: str, owned: bool) -> None:
        self.url = url
        self.owned = owned  # started by this session (or reused): we may stop it

    def run(self, command: str) -> str:
        done = subprocess.run(
            [str(ROOT / "scripts" / "schema-registry-local"), command],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"schema-registry-local {command}: {done.stderr.strip()[-500:]}")
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


@pytest.fixture(scope="session")
def schema_registry() -> Iterator[LocalRegistry]:
    """A real schema registry (Apicurio, Confluent-compatible API) for the session.

    ``STREAMKIT_TEST_SCHEMA_REGISTRY`` (a URL) if set, else ``scripts/schema-registry-local``
    (stopped at the end if this session started it). Without one, registry tests fail
    under CI (``CI=true``) and skip locally.
    """
    given = os.environ.get("STREAMKIT_TEST_SCHEMA_REGISTRY")
    if given:
        yield LocalRegistry(given, owned=False)
        return
    local = LocalRegistry("", owned=True)
    was_running = _script_ok("status") and not _warm_start.get("started_by_us")
    try:
        warming = _warm_start.get("thread")
        if isinstance(warming, threading.Thread):
            warming.join(300)  # started at collection time, beside the first tests
        local.url = local.run("start")  # reuses the warm one: immediate
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        reason = f"scripts/schema-registry-local start failed: {exc}"
        if IN_CI:
            pytest.fail(f"no schema registry: {reason}", pytrace=False)
        pytest.skip(f"no schema registry: {reason}")
    yield local
    if not was_running:
        local.run("stop")


def _script_ok(command: str, timeout: float = 60) -> bool:
    script = ROOT / "scripts" / "schema-registry-local"
    done = subprocess.run([str(script), command], capture_output=True, timeout=timeout, check=False)
    return done.returncode == 0


_warm_start: dict[str, object] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the registry in the background when registry tests were collected.

    The JVM takes ~10 s to get ready; begun here, that overlaps the tests that run first.
    """
    if os.environ.get("STREAMKIT_TEST_SCHEMA_REGISTRY"):
        return
    if not any("schema_registry" in getattr(i, "fixturenames", ()) for i in session.items):
        return
    if _script_ok("status"):
        return
    _warm_start["started_by_us"] = True

    def start() -> None:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            _script_ok("start", timeout=600)

    _warm_start["thread"] = thread = threading.Thread(target=start, daemon=True)
    thread.start()


# The first test on Jaeger may wait for its binary: on a fresh machine `make test` builds it
# in the background (one core) while everything else runs.
JAEGER_BUILD_WAIT = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the Jaeger fixture run last; the first of them may wait for the build."""
    items.sort(key=lambda item: "jaeger" in getattr(item, "fixturenames", ()))
    first = next((i for i in items if "jaeger" in getattr(i, "fixturenames", ())), None)
    if first is not None:
        marker = first.get_closest_marker("timeout")
        own = marker.args[0] if marker is not None and marker.args else 120
        first.add_marker(pytest.mark.timeout(JAEGER_BUILD_WAIT + own), append=False)

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
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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

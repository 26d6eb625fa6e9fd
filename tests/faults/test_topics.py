"""Retry and DLQ topics missing while failures happen, then created (and item 9)."""

from __future__ import annotations

import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.faults.harness import MODULE, dead_ids, journal_service, log_events, produce_seq
from tests.faults.verifier import read_journal, verify
from tests.integration.helpers import (
    STREAMKIT,
    Service,
    committed,
    end_offsets,
    read_all,
    wait_until,
)

pytestmark = pytest.mark.kafka


def _dead_letter_total(service: Service) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{service.port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    found = re.findall(r"^streamkit_dead_letter_total\{[^}]*\} (\S+)$", text, re.M)
    return sum(float(v) for v in found)


def _failing_before_topics(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> tuple[Service, str, str, list]:  # type: ignore[type-arg]
    """A service whose DLQ and retry tier do not exist, with one failure it cannot deliver."""
    topic, group, out = make_topic("notopics", partitions=1), f"g-{unique}", tmp_path / "j.txt"
    healthy = produce_seq(kafka_bootstrap, topic, keys=4, per_key=10)
    produce_seq(kafka_bootstrap, topic, keys=1, per_key=1, event_type="j.fail", key_prefix="f")
    healthy += produce_seq(kafka_bootstrap, topic, keys=4, per_key=10, key_prefix="b")
    # A producer learns a topic is missing after this long (default 30 s): keep the test short.
    fast = ["-X", "topic.metadata.propagation.max.ms=1000"]
    service = journal_service(kafka_bootstrap, group, topic, out, extra=fast)
    service.wait_ready(30)

    def undeliverable() -> bool:
        return any("publish failed" in str(e.get("event")) for e in log_events(service))

    wait_until(undeliverable, 20, "the DLQ publish to fail (no DLQ topic)")
    return service, topic, group, healthy


@pytest.mark.timeout(90)
def test_dlq_and_retry_topics_missing_then_created(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> None:
    # Contract: while the DLQ and retry topics are missing, a failed record is not
    # committed (nothing is dropped) and the worker keeps running; once `streamkit topics
    # ensure` creates them, the record lands in the DLQ exactly once and the commit passes.
    service, topic, group, healthy = _failing_before_topics(
        kafka_bootstrap, make_topic, unique, tmp_path
    )
    assert committed(kafka_bootstrap, group, topic, 1)[0] <= 40  # held at the failure
    done = subprocess.run(
        [STREAMKIT, "topics", "ensure", MODULE, "-t", topic, "-g", group, "-b", kafka_bootstrap],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-1000:]
    ends = end_offsets(kafka_bootstrap, topic, 1)
    wait_until(lambda: committed(kafka_bootstrap, group, topic, 1) == ends, 40, "commit = end")
    dlq = read_all(kafka_bootstrap, f"{topic}.{group}.dlq", 2, timeout=5)
    assert len(dlq) == 1 and dlq[0].key() == b"f0"
    assert service.stop() == 0
    verify("DLQ/retry topics created late", healthy, read_journal(tmp_path / "j.txt"),
           dead=dead_ids(dlq)).check()  # fmt: skip


@pytest.mark.timeout(60)
def test_dead_letter_metric_counts_only_acknowledged_dead_letters(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> None:
    # Contract: while the DLQ topic is missing no dead letter has landed, so
    # streamkit_dead_letter_total stays 0 (failed deliveries are counted elsewhere).
    service, *_ = _failing_before_topics(kafka_bootstrap, make_topic, unique, tmp_path)
    assert _dead_letter_total(service) == 0

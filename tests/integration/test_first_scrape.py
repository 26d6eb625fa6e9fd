"""Every dashboard and alert query has a series from the first scrape, before any event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import Service, ensure_failure_topics
from tests.integration.prom import PrometheusServer
from tests.integration.services.traced import router
from tests.integration.test_observability import ALERTS_PATH, _unanswered

pytestmark = pytest.mark.kafka


@pytest.mark.timeout(90)
def test_every_query_answers_within_seconds_of_start_up_before_any_event(
    kafka_bootstrap: str, make_topic: Any, unique: str, tmp_path: Path
) -> None:
    topic, group = make_topic("quiet", partitions=2), f"g-{unique}"
    ensure_failure_topics(kafka_bootstrap, router, topic, group)
    service = Service(
        "tests.integration.services.traced",
        bootstrap=kafka_bootstrap,
        group=group,
        topics=[topic],
        out=tmp_path / "quiet",
    )
    prom = PrometheusServer(tmp_path / "prom", [f"127.0.0.1:{service.port}"], [ALERTS_PATH])
    try:
        prom.wait_ready()
        service.wait_ready()
        # Scrapes every 1 s and rate() needs two samples; the lag gauges refresh every 5 s.
        unanswered = _unanswered(prom, group, timeout=8)
        assert not unanswered, "queries without data:\n" + "\n".join(unanswered)
    finally:
        prom.close()
        assert service.stop() == 0

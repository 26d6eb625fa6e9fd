"""A second commit owner (tests/seams/journal_commits.py) runs a real Worker unchanged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streamkit import Router, Settings, Worker
from streamkit.consumer.state import Load
from streamkit.retry.topics import Tier
from tests.integration.helpers import committed, ensure_failure_topics, produce_events, wait_until
from tests.seams.journal_commits import JournalCommits

pytestmark = pytest.mark.kafka


def test_a_worker_commits_through_a_second_commit_owner(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    topic, group = make_topic("orders", partitions=2), f"journal-{unique}"
    router = Router()
    seen: list[int] = []

    @router.handler("order.created")
    def on(data: dict[str, Any]) -> None:
        seen.append(data["n"])

    ensure_failure_topics(kafka_bootstrap, router, topic, group)
    produce_events(
        kafka_bootstrap, topic, [("order.created", {"n": n}, f"k{n}") for n in range(50)]
    )
    owners: list[JournalCommits] = []

    def make(tiers: dict[str, Tier], load: Load) -> JournalCommits:
        owners.append(JournalCommits(tiers, load))
        return owners[-1]

    async def main() -> None:
        settings = Settings(
            bootstrap_servers=kafka_bootstrap, group_id=group, topics=[topic], commit_interval=0.1
        )
        worker = Worker(router, settings, commits=make)
        running = asyncio.ensure_future(worker.run())
        while len(seen) < 50 and not running.done():
            await asyncio.sleep(0.05)
        worker.stop()
        await asyncio.wait_for(running, 30)

    asyncio.run(asyncio.wait_for(main(), 60))
    assert sorted(seen) == list(range(50))
    [owner] = owners
    final = {p: o for t, p, o in owner.journal if t == topic}
    assert sum(final.values()) == 50  # what the owner journaled...
    assert wait_until(lambda: committed(kafka_bootstrap, group, topic, 2) == final, 10, "commits")

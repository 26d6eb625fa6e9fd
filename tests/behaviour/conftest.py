"""``run_on``: runs one scenario on the in-memory broker and on the real broker alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from streamkit import Router
from tests.behaviour.backends import Backend, kafka_backend, memory_backend

Scenario = Callable[[Backend], Awaitable[None]]


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def run_on(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``run_on(router, scenario, extra_topics=[...])`` on this parameter's backend."""

    def run(
        router: Router,
        scenario: Scenario,
        extra_topics: list[str] = (),  # type: ignore[assignment]
        source: str | None = None,
    ) -> None:
        unique = uuid.uuid4().hex[:8]
        source, group = source or f"{router.topics[0]}-{unique}", f"svc-{unique}"
        rename = {t: f"{t}-{unique}" for t in extra_topics}
        router.publish_topics = {k: rename.get(v, v) for k, v in router.publish_topics.items()}

        async def main() -> None:
            if request.param == "memory":
                ctx: Any = memory_backend(router, source, group)
            else:
                bootstrap = request.getfixturevalue("kafka_bootstrap")
                ctx = kafka_backend(bootstrap, router, source, group, list(rename.values()))
            async with ctx as backend:
                backend.topic = lambda name: rename.get(name, name)
                await asyncio.wait_for(scenario(backend), 90)

        asyncio.run(main())

    return run

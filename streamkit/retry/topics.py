"""Retry-tier and dead-letter topic names, owned by the consumer group.

Default scheme: ``<source>.<group>.retry.<n>`` (n = 1, 2, ...) and ``<source>.<group>.dlq``.
Putting the group in the name means two services consuming one topic never re-run each
other's failures. Override with a :class:`TopicNames` of your own templates.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Templates for retry and DLQ topic names (``{topic}``, ``{group}``, ``{n}``)."""

    retry_template: str = "{topic}.{group}.retry.{n}"
    dlq_template: str = "{topic}.{group}.dlq"

    def retry(self, topic: str, group: str, n: int) -> str:
        """Name of retry tier ``n`` (1-based) for ``topic`` in ``group``."""
        return self.retry_template.format(topic=topic, group=group, n=n)

    def dlq(self, topic: str, group: str) -> str:
        """Name of the dead-letter topic for ``topic`` in ``group``."""
        return self.dlq_template.format(topic=topic, group=group)

    def all_for(self, topic: str, group: str, tiers: int) -> list[str]:
        """Every retry tier and the DLQ for ``topic``."""
        return [self.retry(topic, group, n) for n in range(1, tiers + 1)] + [self.dlq(topic, group)]


@dataclass(frozen=True, slots=True)
class Tier:
    """Where a consumed topic sits in the retry path."""

    source: str
    n: int  # 0 for the source topic itself


def tier_map(sources: list[str], group: str, tiers: int, names: TopicNames) -> dict[str, Tier]:
    """Map every topic the group consumes (sources and retry tiers) to its :class:`Tier`."""
    result = {source: Tier(source, 0) for source in sources}
    for source in sources:
        for n in range(1, tiers + 1):
            result[names.retry(source, group, n)] = Tier(source, n)
    return result

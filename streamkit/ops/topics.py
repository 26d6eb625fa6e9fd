"""Topic management for operators: create, ensure a service's topics, list, describe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in stubs
    AclOperation,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)

from streamkit.admin import CREATE_DENIED
from streamkit.errors import MissingTopicsError
from streamkit.ops.cluster import Cluster
from streamkit.ops.errors import OpsError
from streamkit.preflight import denied

DEFAULT_REPLICATION = -1  # the broker's default.replication.factor
TOPIC_OVERRIDE = ConfigSource.DYNAMIC_TOPIC_CONFIG.value  # set on the topic, not inherited


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create: name, partition count, replication factor, topic configs."""

    name: str
    partitions: int
    replication_factor: int = DEFAULT_REPLICATION
    config: dict[str, str] = field(default_factory=dict)

    def new_topic(self) -> NewTopic:
        """The admin client's request object."""
        return NewTopic(
            self.name, self.partitions, self.replication_factor, config=dict(self.config)
        )


def create(cluster: Cluster, specs: list[TopicSpec], *, exist_ok: bool = False) -> list[str]:
    """Create ``specs`` in one request; returns the names created by this call.

    A topic that exists already is an :class:`OpsError` unless ``exist_ok`` (then a
    concurrent creator simply won).
    """
    if not specs:
        return []
    timeout = cluster.timeout
    futures = cluster.admin.create_topics(
        [s.new_topic() for s in specs], operation_timeout=timeout, request_timeout=timeout
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() in CREATE_DENIED:  # name the ACL to add, in one line
                settings = cluster.settings.client_settings()
                raise denied("topic", name, AclOperation.CREATE, settings) from None
            if err.name() != "TOPIC_ALREADY_EXISTS":
                raise OpsError(f"creating topic {name} failed: {err.str()}") from None
            if not exist_ok:
                raise OpsError(
                    f"topic {name} exists already (--if-not-exists accepts that)"
                ) from None
            continue
        created.append(name)
    return created


@dataclass(frozen=True, slots=True)
class Ensured:
    """One topic of ``topics ensure``: its source (None for a source) and what happened."""

    name: str
    source: str | None
    partitions: int
    created: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "name": self.name,
            "source": self.source,
            "partitions": self.partitions,
            "created": self.created,
        }


def ensure(
    cluster: Cluster,
    sources: list[str],
    derived: dict[str, str],
    *,
    partitions: int | None = None,
    replication_factor: int = DEFAULT_REPLICATION,
) -> list[Ensured]:
    """Create what is missing: sources (with ``partitions``), then their retry tiers and
    DLQs, each with its source's partition count so a key keeps its partition number."""
    missing = [s for s in sources if not cluster.exists(s)]
    if missing and partitions is None:
        raise MissingTopicsError(missing, hint="pass --partitions N to create them")
    counts = {s: cluster.partition_count(s) for s in sources if s not in missing}
    counts |= dict.fromkeys(missing, partitions or 0)
    new_sources = [TopicSpec(s, counts[s], replication_factor) for s in missing]
    created = set(create(cluster, new_sources, exist_ok=True))
    new_derived = [
        TopicSpec(name, counts[src], replication_factor)
        for name, src in derived.items()
        if not cluster.exists(name)
    ]
    created |= set(create(cluster, new_derived, exist_ok=True))
    rows = [Ensured(s, None, counts[s], s in created) for s in sources]
    rows += [Ensured(n, src, counts[src], n in created) for n, src in derived.items()]
    return rows


def list_topics(cluster: Cluster, *, internal: bool = False) -> list[dict[str, Any]]:
    """Every topic with its partition count and replication factor, sorted by name."""
    rows = []
    for name, meta in sorted(cluster.metadata.topics.items()):
        if name.startswith("__") and not internal:
            continue
        parts = list(meta.partitions.values())
        rows.append(
            {
                "name": name,
                "partitions": len(parts),
                "replication_factor": len(parts[0].replicas) if parts else 0,
            }
        )
    return rows


def describe(cluster: Cluster, topic: str, *, all_configs: bool = False) -> dict[str, Any]:
    """Partitions (leader, replicas, in-sync replicas, offsets) and configs of ``topic``.

    Configs: those set on the topic, or every one with ``all_configs``.
    """
    parts = cluster.partitions(topic)
    marks = cluster.watermarks(topic, parts)
    meta = cluster.metadata.topics[topic].partitions
    partitions = [
        {
            "partition": p,
            "leader": meta[p].leader,
            "replicas": list(meta[p].replicas),
            "isr": list(meta[p].isrs),
            "low_offset": marks[p][0],
            "end_offset": marks[p][1],
            "records": marks[p][1] - marks[p][0],
        }
        for p in parts
    ]
    return {
        "topic": topic,
        "partitions": partitions,
        "configs": _configs(cluster, topic, all_configs),
    }


def _configs(cluster: Cluster, topic: str, everything: bool) -> dict[str, str | None]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    try:
        future = cluster.admin.describe_configs([resource], request_timeout=cluster.timeout)
        entries = future[resource].result(cluster.timeout)
    except KafkaException as exc:
        raise OpsError(f"reading the configs of {topic} failed: {exc.args[0].str()}") from None
    return {
        name: ("***" if e.is_sensitive else e.value)
        for name, e in sorted(entries.items())
        if everything or e.source == TOPIC_OVERRIDE
    }

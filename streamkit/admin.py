"""Cluster checks and topic management with the admin client."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in stubs
    AdminClient,
    ClusterMetadata,
    NewTopic,
)

from streamkit.errors import BrokerUnavailableError, ConfigError, MissingTopicsError
from streamkit.producer.producer import RDKAFKA_LOG
from streamkit.reachability import check_reachable


def connect(
    settings: dict[str, Any], timeout: float, *, wait: float = 0.0
) -> tuple[AdminClient, ClusterMetadata]:
    """An admin client and the cluster's metadata; raises if no broker answers in time.

    Fails within seconds when every bootstrap server refuses or does not resolve, unless
    ``wait`` gives a broker that is starting that many seconds to accept connections.
    """
    try:
        conf: dict[str, Any] = {"logger": RDKAFKA_LOG, **settings}  # no raw lines on stderr
        admin = AdminClient(conf)
    except KafkaException as exc:
        raise ConfigError(f"invalid client settings: {exc.args[0].str()}") from None
    check_reachable(str(settings.get("bootstrap.servers", "")), wait)
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        servers = settings.get("bootstrap.servers", "?")
        raise BrokerUnavailableError(
            f"no Kafka broker answered at {servers} within {timeout:g}s ({exc.args[0].str()})"
        ) from None
    return admin, metadata


def check_topics(metadata: ClusterMetadata, needed: list[str]) -> None:
    """Raise :class:`MissingTopicsError` naming every topic in ``needed`` that is absent."""
    missing = [t for t in needed if t not in metadata.topics]
    if missing:
        raise MissingTopicsError(missing)


def check_partitions(metadata: ClusterMetadata, derived: dict[str, str]) -> None:
    """Raise :class:`ConfigError` when a retry/DLQ topic has fewer partitions than its source.

    Failed records go to the retry tier partition with the source's partition number, so a
    key stays on one partition number all along its retry path.
    """
    short = [
        f"{name} ({len(metadata.topics[name].partitions)} < {len(metadata.topics[src].partitions)})"
        for name, src in derived.items()
        if name in metadata.topics
        and src in metadata.topics
        and len(metadata.topics[name].partitions) < len(metadata.topics[src].partitions)
    ]
    if short:
        raise ConfigError(
            "retry/DLQ topics with fewer partitions than their source: " + ", ".join(short)
        )


def ensure_topics(
    admin: AdminClient,
    metadata: ClusterMetadata,
    wanted: dict[str, str],
    *,
    replication_factor: int = -1,
    timeout: float = 30.0,
) -> list[str]:
    """Create each topic of ``wanted`` (name -> source topic) that does not exist yet.

    Each gets its source topic's partition count, so keys land on matching partitions.
    Returns the names created. ``replication_factor`` -1 uses the broker default.
    """
    new = []
    for name, source in wanted.items():
        if name in metadata.topics:
            continue
        source_meta = metadata.topics.get(source)
        if source_meta is None:
            raise MissingTopicsError([source])
        new.append(NewTopic(name, len(source_meta.partitions), replication_factor))
    if not new:
        return []
    futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
    for future in futures.values():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":  # a concurrent ensure won
                raise
    return [t.topic for t in new]

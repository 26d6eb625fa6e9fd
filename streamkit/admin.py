"""Cluster checks and topic management with the admin client."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in stubs
    AclOperation,
    AdminClient,
    ClusterMetadata,
    NewTopic,
)

from streamkit.clientlog import RDKAFKA_LOG
from streamkit.config import redact
from streamkit.errors import (
    AccessDeniedError,
    BrokerUnavailableError,
    ConfigError,
    MissingTopicsError,
)
from streamkit.preflight import denied
from streamkit.reachability import check_reachable

# Errors no wait can cure: a wrong password or certificate is reported at once, in one
# line, instead of as "no broker answered" after the whole connect timeout.
REFUSED = {
    KafkaError._AUTHENTICATION: "authentication failed",
    KafkaError._SSL: "TLS handshake failed",
}
CREATE_DENIED = (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED)
CONNECT_STEP = 0.5  # seconds per metadata attempt; a refusal is noticed this quickly


def connect(
    settings: dict[str, Any], timeout: float, *, wait: float = 0.0
) -> tuple[AdminClient, ClusterMetadata]:
    """An admin client and the cluster's metadata.

    Raises :class:`AccessDeniedError` when the cluster refuses our credentials or its
    certificate does not verify, :class:`BrokerUnavailableError` if no broker answers in time
    -- within seconds when every bootstrap server refuses or does not resolve, unless
    ``wait`` gives a broker that is starting that many seconds to accept connections.
    """
    errors: list[KafkaError] = []
    try:
        # logger: no raw lines on stderr; log_level 0: we report a failure ourselves, in one
        # line (``-X log_level=7`` brings the client's logs back); error_cb: learn of
        # refusals while we wait.
        conf: dict[str, Any] = {
            "logger": RDKAFKA_LOG,
            "log_level": 0,
            "error_cb": errors.append,
            **settings,
        }
        admin = AdminClient(conf)
    except KafkaException as exc:
        message = redact(settings, exc.args[0].str())
        raise ConfigError(f"invalid client settings: {message}") from None
    check_reachable(str(settings.get("bootstrap.servers", "")), wait)
    deadline = time.monotonic() + timeout
    while True:
        step = max(0.05, min(CONNECT_STEP, deadline - time.monotonic()))
        try:
            return admin, admin.list_topics(timeout=step)
        except KafkaException as exc:
            last = exc.args[0].str()
        admin.poll(0)  # serves error_cb
        _raise_refused(settings, errors)
        if time.monotonic() >= deadline:
            servers = settings.get("bootstrap.servers", "?")
            raise BrokerUnavailableError(
                f"no Kafka broker answered at {servers} within {timeout:g}s ({last})"
            )


def _raise_refused(settings: dict[str, Any], errors: list[KafkaError]) -> None:
    for err in errors:
        what = REFUSED.get(err.code())
        if what is not None:
            detail = redact(settings, err.str()).replace("\n", " ")
            raise AccessDeniedError(f"{what}: {detail}")


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
    settings: dict[str, Any] | None = None,
) -> list[str]:
    """Create each topic of ``wanted`` (name -> source topic) that does not exist yet.

    Each gets its source topic's partition count, so keys land on matching partitions.
    Returns the names created. ``replication_factor`` -1 uses the broker default.
    A refused creation raises :class:`AccessDeniedError` naming the ACL to add (the
    principal is read from ``settings``).
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
    for name, future in futures.items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            code = exc.args[0].code()
            if code in (
                KafkaError.TOPIC_AUTHORIZATION_FAILED,
                KafkaError.CLUSTER_AUTHORIZATION_FAILED,
            ):
                raise denied("topic", name, AclOperation.CREATE, settings or {}) from None
            if code != KafkaError.TOPIC_ALREADY_EXISTS:  # a concurrent ensure won
                raise
    return [t.topic for t in new]

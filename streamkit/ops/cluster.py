"""One connection to the cluster for an operator command: admin client, metadata, offsets."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in stubs
    AdminClient,
    ClusterMetadata,
    OffsetSpec,
)

from streamkit.admin import connect
from streamkit.clientlog import RDKAFKA_LOG
from streamkit.config import Settings, redact
from streamkit.errors import ConfigError
from streamkit.ops.errors import OpsError, UnknownTopicsError
from streamkit.reachability import broker_wait

# librdkafka logs every failed connection attempt on stderr; a command reports the failure
# itself in one line. ``-X log_level=7`` brings the client's own logs back for debugging.
QUIET = {"log_level": 0}
RETRY_PAUSE = 0.2  # seconds between tries of a request the broker called retriable
NO_LEADER_YET = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE})
EARLIEST: Any = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
LATEST: Any = OffsetSpec.latest()  # type: ignore[no-untyped-call]


def offsets(
    admin: AdminClient, specs: dict[TopicPartition, Any], timeout: float
) -> dict[tuple[str, int], int]:
    """``ListOffsets`` for many partitions at once -> ``{(topic, partition): offset}``.

    An offset of -1 for a timestamp spec means no record is that new.
    """
    if not specs:
        return {}
    deadline = time.monotonic() + timeout
    while True:
        try:
            futures = admin.list_offsets(specs, request_timeout=timeout)
            return {(tp.topic, tp.partition): f.result(timeout).offset for tp, f in futures.items()}
        except KafkaException as exc:
            err = exc.args[0]
            # A topic created a moment ago has no leader yet: that passes within a second.
            transient = err.retriable() or err.code() in NO_LEADER_YET
            if not transient or time.monotonic() > deadline:
                raise OpsError(f"listing offsets failed: {err.str()}") from None
        time.sleep(RETRY_PAUSE)


@dataclass(slots=True)
class Cluster:
    """Settings, an admin client and a metadata snapshot taken when connecting."""

    settings: Settings
    admin: AdminClient
    metadata: ClusterMetadata

    @classmethod
    def connect(cls, settings: Settings) -> Cluster:
        """Connect; raises :class:`~streamkit.errors.BrokerUnavailableError` in time."""
        conf = {**QUIET, **settings.client_settings()}
        try:
            admin, metadata = connect(conf, settings.connect_timeout, wait=broker_wait(settings))
        except KafkaException as exc:  # a bad -X property, rejected by the client
            message = redact(conf, exc.args[0].str())
            raise ConfigError(f"invalid client settings: {message}") from None
        return cls(settings, admin, metadata)

    def client_settings(self) -> dict[str, Any]:
        """librdkafka settings for the command's consumers."""
        return {**QUIET, **self.settings.client_settings()}

    def producer_settings(self) -> dict[str, Any]:
        """librdkafka settings for the command's producers (no consumer-only properties)."""
        return {**QUIET, **self.settings.producer_settings()}

    def partition_count(self, topic: str) -> int:
        """How many partitions ``topic`` has (0 when unknown)."""
        meta = self.metadata.topics.get(topic)
        return 0 if meta is None else len(meta.partitions)

    @property
    def timeout(self) -> float:
        """The bound for every broker request of a command."""
        return self.settings.connect_timeout

    def exists(self, topic: str, *, refresh: bool = False) -> bool:
        """True when ``topic`` exists (``refresh`` re-reads the metadata first)."""
        if refresh:
            try:
                self.metadata = self.admin.list_topics(timeout=self.timeout)
            except KafkaException as exc:
                raise OpsError(
                    f"reading the cluster metadata failed: {exc.args[0].str()}"
                ) from None
        meta = self.metadata.topics.get(topic)
        return meta is not None and meta.error is None

    def require(self, *topics: str) -> None:
        """Raise :class:`UnknownTopicsError` naming every topic that does not exist."""
        missing = [t for t in topics if not self.exists(t)]
        if missing:
            raise UnknownTopicsError(missing)

    def partitions(self, topic: str, only: tuple[int, ...] = ()) -> list[int]:
        """The partitions of ``topic`` (those in ``only`` when given, which must exist)."""
        self.require(topic)
        known = sorted(self.metadata.topics[topic].partitions)
        bad = sorted(set(only) - set(known))
        if bad:
            raise OpsError(f"topic {topic} has no partition {bad[0]} (it has {len(known)})")
        return [p for p in known if not only or p in only]

    def watermarks(self, topic: str, partitions: list[int]) -> dict[int, tuple[int, int]]:
        """``{partition: (low, high)}``: first offset still stored, next offset to write."""
        low = offsets(self.admin, self._specs(topic, partitions, EARLIEST), self.timeout)
        high = offsets(self.admin, self._specs(topic, partitions, LATEST), self.timeout)
        return {p: (low[(topic, p)], high[(topic, p)]) for p in partitions}

    def offsets_for_time(self, topic: str, partitions: list[int], at_ms: int) -> dict[int, int]:
        """Per partition, the first offset whose timestamp is >= ``at_ms`` (-1: none)."""
        specs = self._specs(topic, partitions, OffsetSpec.for_timestamp(at_ms))
        found = offsets(self.admin, specs, self.timeout)
        return {p: found[(topic, p)] for p in partitions}

    @staticmethod
    def _specs(topic: str, partitions: list[int], spec: Any) -> dict[TopicPartition, Any]:
        return {TopicPartition(topic, p): spec for p in partitions}

    def consumer(self, group: str | None = None) -> confluent_kafka.Consumer:
        """A consumer for ``assign()`` reads that never commits on its own.

        Without ``group`` it is a throwaway: a random group id that never commits.
        """
        conf: dict[str, Any] = {
            "group.id": group or f"streamkit-ops-{uuid.uuid4().hex[:12]}",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "logger": RDKAFKA_LOG,
            **self.client_settings(),
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
        try:
            return confluent_kafka.Consumer(conf)
        except KafkaException as exc:
            message = redact(conf, exc.args[0].str())
            raise ConfigError(f"invalid consumer settings: {message}") from None

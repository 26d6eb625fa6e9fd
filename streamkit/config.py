"""Settings: environment (prefix ``STREAMKIT_``), flags, and librdkafka passthrough.

Any librdkafka property can be passed through (``-X sasl.mechanism=PLAIN`` on the CLI, or
``STREAMKIT_KAFKA='{"sasl.password": "..."}'``); secrets are never logged in clear.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SECRET_MARKERS = ("password", "secret", "token", "key.pem", "private", "jaas")
CONSUMER_ONLY = (
    "group.",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "auto.offset.reset",
    "auto.commit",
    "enable.auto.",
    "partition.assignment.strategy",
    "fetch.",
    "queued.",
    "isolation.level",
    "check.crcs",
    "coordinator.",
    "enable.partition.eof",
)
# Settings streamkit owns on the consumer: the at-least-once contract depends on them.
CONSUMER_FORCED: dict[str, Any] = {"enable.auto.commit": False, "enable.auto.offset.store": False}


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _mapping(value: Any) -> Any:
    """Accept a dict, JSON text, or ``k=v,k=v`` text."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return {}
    if text.startswith("{"):
        return orjson.loads(text)
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"expected k=v pairs separated by commas, got {value!r}")
    return {k.strip(): v.strip() for k, v in pairs}


class Settings(BaseSettings):
    """Runtime settings; every field can be set as ``STREAMKIT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="STREAMKIT_", extra="ignore")

    bootstrap_servers: str = "localhost:9092"
    group_id: str | None = None
    topics: Annotated[list[str], NoDecode] = Field(default_factory=list)
    kafka: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    publish_topics: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    default_publish_topic: str | None = None

    batch_size: int = Field(500, ge=1, le=100_000)
    max_inflight: int = Field(1000, ge=1)  # handler tasks running at once, per process
    max_buffered: int = Field(10_000, ge=1)  # events held in memory before pausing fetches
    max_pending_per_partition: int = Field(100_000, ge=100)
    commit_interval: float = Field(1.0, gt=0)
    poll_timeout: float = Field(0.1, gt=0, le=5)
    shutdown_timeout: float = Field(30.0, ge=0)
    revoke_timeout: float = Field(10.0, ge=0)
    connect_timeout: float = Field(30.0, gt=0)
    blocking_threads: int = Field(8, ge=1)
    check_topics: bool = True

    metrics_port: int = Field(9400, ge=0, le=65535)
    # All interfaces: Kubernetes probes and Prometheus scrapes come from outside the pod.
    metrics_host: str = "0.0.0.0"
    stall_after: float = Field(60.0, gt=0)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"

    _split_topics = field_validator("topics", mode="before")(_split)
    _split_maps = field_validator("kafka", "publish_topics", mode="before")(_mapping)

    def client_settings(self) -> dict[str, Any]:
        """librdkafka settings shared by consumer, producer and admin client."""
        return {"bootstrap.servers": self.bootstrap_servers, **self.kafka}

    def producer_settings(self) -> dict[str, Any]:
        """Client settings minus consumer-only properties (librdkafka warns about those)."""
        return {k: v for k, v in self.client_settings().items() if not k.startswith(CONSUMER_ONLY)}

    def consumer_settings(self, group_id: str) -> dict[str, Any]:
        """Consumer settings: our defaults, then passthrough, then what we must own."""
        defaults: dict[str, Any] = {
            "group.id": group_id,
            # range, not cooperative-sticky: a service subscribes to its sources and their
            # retry tiers, and cooperative-sticky balances partition counts across all of
            # them -- a joining member took every source partition and left the first one
            # only retry tiers (2 members ran slower than 1). range balances each topic and
            # puts partition N of a source and of its tiers on one member. Its rebalances
            # are eager, but measured a 46 ms join pause against 1 s (bench scenario 7).
            "partition.assignment.strategy": "range",
            "auto.offset.reset": "earliest",
            # Bounded prefetch keeps memory flat under a large backlog.
            "queued.max.messages.kbytes": 16384,
            # When that prefetch queue is full librdkafka waits this long before fetching
            # again (default 1 s): a stall per full queue, a third of the throughput.
            "fetch.queue.backoff.ms": 20,
            "enable.partition.eof": False,
            # Members learn of a rebalance on a heartbeat: with the 3 s default a joining
            # member's partitions stood still ~3 s (cooperative: ~1.1 s with 1 s, measured).
            "heartbeat.interval.ms": 1000,
        }
        return {**defaults, **self.client_settings(), **CONSUMER_FORCED}


def redact(settings: dict[str, Any]) -> dict[str, Any]:
    """A copy of librdkafka settings that is safe to log."""
    return {
        k: ("***" if any(m in k.lower() for m in SECRET_MARKERS) else v)
        for k, v in settings.items()
        if not callable(v)
    }

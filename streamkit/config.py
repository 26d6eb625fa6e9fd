"""Settings: environment (prefix ``STREAMKIT_``), flags, and librdkafka passthrough.

Any librdkafka property can be passed through (``-X sasl.mechanism=PLAIN`` on the CLI, or
``STREAMKIT_KAFKA='{"sasl.password": "..."}'``); the common TLS/SASL ones also have named
settings (:mod:`streamkit.security`). Secrets are never logged in clear: every place
config reaches a log line or an error goes through :func:`redact`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, overload

import orjson
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from streamkit.membership import GroupProtocol, group_defaults, protocol_of
from streamkit.security import SecuritySettings

# librdkafka properties that carry secrets (CONFIGURATION.md), and name fragments that
# catch the rest (sasl.oauthbearer.assertion.private.key.*, sasl.jaas.config of a Java
# properties file pasted in, ...). A false positive costs a "***" in a log line.
SECRET_PROPERTIES = frozenset(
    {
        "sasl.password",
        "sasl.oauthbearer.config",  # may hold principal, scope and extensions with tokens
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.client.credentials.client.secret",
        "sasl.oauthbearer.extensions",
        "ssl.key.password",
        "ssl.key.pem",
        "ssl_key",
        "ssl.keystore.password",
        "ssl_engine_callback_data",
    }
)
SECRET_MARKERS = ("password", "secret", "token", "key.pem", "private", "passphrase", "jaas")
REDACTED = "***"
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
    """Accept a dict, JSON text, or ``k=v,k=v`` text.

    Errors never echo the text: it may hold a password (and a comma inside one is
    exactly what breaks the ``k=v`` form).
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    bad = [i for i, p in enumerate(pairs, 1) if len(p) != 2 or not p[0].strip()]
    if bad:
        raise ValueError(
            f"expected k=v pairs separated by commas; item {bad[0]} is not one "
            '(a value with a comma needs the JSON form {"key": "value"})'
        )
    return {k.strip(): v.strip() for k, v in pairs}


class Settings(BaseSettings, SecuritySettings):
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
    # Offsets left uncommitted behind a partition's oldest event in flight before its
    # fetches pause (what a restart would read again).
    max_pending_per_partition: int = Field(100_000, ge=100)
    commit_interval: float = Field(1.0, gt=0)
    poll_timeout: float = Field(0.1, gt=0, le=5)
    shutdown_timeout: float = Field(30.0, ge=0)
    revoke_timeout: float = Field(10.0, ge=0)
    connect_timeout: float = Field(30.0, gt=0)
    blocking_threads: int = Field(8, ge=1)
    check_topics: bool = True
    check_access: bool = True  # preflight of ACLs (streamkit.preflight)

    metrics_port: int = Field(9400, ge=0, le=65535)
    # All interfaces: Kubernetes probes and Prometheus scrapes come from outside the pod.
    metrics_host: str = "0.0.0.0"
    stall_after: float = Field(60.0, gt=0)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
    # "safe": a pydantic ValidationError raised in a handler is summarised without its
    # input values in logs and DLQ headers; "full" keeps the whole text (may hold PII).
    error_details: Literal["safe", "full"] = "safe"
    # What happens to event types no handler claims; None: what the router says.
    on_unknown: Literal["dlq", "skip"] | None = None
    # "exactly-once": outputs, retry/DLQ records and offsets in one Kafka transaction per
    # commit interval (read_committed readers see each output once). See the README.
    guarantee: Literal["at-least-once", "exactly-once"] = "at-least-once"
    # exactly-once: the producer's transactional.id; default streamkit-<group>-<random>.
    # A stable id per process (e.g. the pod name) lets a restart abort what it left open.
    transactional_id: str | None = None
    # Static membership (KIP-345): a stable id per process (a StatefulSet pod name) gets
    # its partitions back on a restart within the session timeout, without a rebalance.
    instance_id: str | None = None
    # classic: client-side range assignor, eager; consumer: KIP-848, the broker assigns.
    group_protocol: GroupProtocol = "classic"

    _split_topics = field_validator("topics", mode="before")(_split)
    _split_maps = field_validator("kafka", "publish_topics", mode="before")(_mapping)

    def client_settings(self) -> dict[str, Any]:
        """librdkafka settings shared by consumer, producer and admin client.

        Named security settings first, so a ``-X`` property of the same name wins.
        """
        return {
            "bootstrap.servers": self.bootstrap_servers,
            **self.security_properties(),
            **self.kafka,
        }

    def producer_settings(self) -> dict[str, Any]:
        """Client settings minus consumer-only properties (librdkafka warns about those)."""
        return {k: v for k, v in self.client_settings().items() if not k.startswith(CONSUMER_ONLY)}

    def consumer_settings(self, group_id: str) -> dict[str, Any]:
        """Consumer settings: our defaults, then passthrough, then what we must own."""
        protocol = protocol_of({"group.protocol": self.group_protocol, **self.kafka})
        defaults: dict[str, Any] = {
            "group.id": group_id,
            **group_defaults(protocol, self.instance_id),
            "auto.offset.reset": "earliest",
            # Bounded prefetch keeps memory flat under a large backlog.
            "queued.max.messages.kbytes": 16384,
            # When that prefetch queue is full librdkafka waits this long before fetching
            # again (default 1 s): a stall per full queue, a third of the throughput.
            "fetch.queue.backoff.ms": 20,
            "enable.partition.eof": False,
        }
        return {**defaults, **self.client_settings(), **CONSUMER_FORCED}


def is_secret(name: str) -> bool:
    """True when the librdkafka property ``name`` may carry a secret."""
    lowered = name.lower()
    return lowered in SECRET_PROPERTIES or any(m in lowered for m in SECRET_MARKERS)


@overload
def redact(settings: Mapping[str, Any]) -> dict[str, Any]: ...
@overload
def redact(settings: Mapping[str, Any], text: str) -> str: ...
def redact(settings: Mapping[str, Any], text: str | None = None) -> dict[str, Any] | str:
    """The one redaction of client config: use it wherever config reaches a log or error.

    ``redact(settings)`` is a copy of ``settings`` safe to log: secret values are
    ``***`` and callables (callbacks, loggers) are left out. ``redact(settings, text)``
    is ``text`` (e.g. a client's error message) with every secret value of ``settings``
    that occurs in it replaced by ``***``.
    """
    if text is None:
        return {
            k: (REDACTED if is_secret(k) else v) for k, v in settings.items() if not callable(v)
        }
    for name, value in settings.items():
        # Very short values would garble the message; their leak tells little anyway.
        if is_secret(name) and isinstance(value, str) and len(value) >= 3:
            text = text.replace(value, REDACTED)
    return text

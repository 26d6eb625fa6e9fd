"""What the worker checks and says once, when it starts: settings that cannot work together,
handlers that would fail on every event, and one ``starting`` line with the settings."""

from __future__ import annotations

from typing import Any

import structlog

from streamkit.config import Settings, redact
from streamkit.errors import ConfigError
from streamkit.handlers.lint import unmapped_publishes
from streamkit.handlers.registry import Router
from streamkit.membership import check_group_conf, protocol_of

log = structlog.get_logger("streamkit.worker")


def check_consumer_conf(conf: dict[str, Any], router: Router, *, exactly_once: bool) -> None:
    """Refuse what cannot work; warn about what works worse than the user expects."""
    check_group_conf(conf)
    consumer_protocol = protocol_of(conf) == "consumer"
    strategy = str(conf.get("partition.assignment.strategy", ""))
    if exactly_once and ("cooperative" in strategy or consumer_protocol):
        raise ConfigError(
            "exactly-once needs eager rebalances (--group-protocol classic with range, the "
            "default): a transaction must end when partitions move, and cooperative or "
            "KIP-848 rebalances move some while others keep running"
        )
    assignor = str(conf.get("group.remote.assignor")) if consumer_protocol else strategy
    if any(spec.keep_key_order for spec in router.handlers()) and assignor != "range":
        log.warning(
            "keep_key_order needs the range assignor (partition.assignment.strategy, or "
            "group.remote.assignor with --group-protocol consumer): partition N of a source "
            "and of its retry tiers may land on different members",
            assignor=assignor,
        )
    if consumer_protocol and conf.get("group.instance.id"):
        log.warning(
            "--instance-id with --group-protocol consumer: after a crash the broker refuses "
            "the restarted process until the old session expires (45 s by default); the "
            "classic protocol gives the partitions back at once"
        )


def log_start(
    conf: dict[str, Any], router: Router, settings: Settings, group: str, topics: list[str]
) -> None:
    """The ``starting`` line (settings redacted) and the handlers that cannot publish."""
    log.info(
        "starting",
        group=group,
        event_types=sorted(spec.event_type for spec in router.handlers()),
        topics=topics,
        settings=redact(conf),
    )
    mapped = router.publish_topics | settings.publish_topics
    for name, event_type in unmapped_publishes(
        router.handlers(), mapped, settings.default_publish_topic
    ):
        log.warning(
            "handler publishes an event type with no topic: every such event will be "
            "dead-lettered (map it in publish_topics or pass topic=)",
            handler=name,
            event_type=event_type,
        )

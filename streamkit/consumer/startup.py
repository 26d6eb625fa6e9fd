"""What the worker checks and says once, when it starts: settings that cannot work together,
handlers that would fail on every event, and one ``starting`` line with the settings."""

from __future__ import annotations

from typing import Any

import structlog

from streamkit.config import Settings, redact
from streamkit.errors import ConfigError
from streamkit.handlers.lint import unmapped_publishes
from streamkit.handlers.registry import Router

log = structlog.get_logger("streamkit.worker")


def check_consumer_conf(conf: dict[str, Any], router: Router, *, exactly_once: bool) -> None:
    """Refuse what cannot work; warn about what works worse than the user expects."""
    strategy = str(conf["partition.assignment.strategy"])
    if exactly_once and "cooperative" in strategy:
        raise ConfigError(
            "exactly-once needs an eager assignment strategy (range, the default): a "
            "transaction must end when partitions move, and cooperative rebalances "
            "move some while others keep running"
        )
    if any(spec.keep_key_order for spec in router.handlers()) and strategy != "range":
        log.warning(
            "keep_key_order needs partition.assignment.strategy=range: partition N of a "
            "source and of its retry tiers may land on different members",
            strategy=strategy,
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

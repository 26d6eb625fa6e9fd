"""Group membership: the rebalance protocol, and whether a member is static.

Two protocols (KIP-848). ``classic``: the client-side assignor (streamkit's ``range``,
eager), session and heartbeat set by the client. ``consumer``: the broker assigns
incrementally (``group.remote.assignor``); session and heartbeat are broker settings
(``group.consumer.session.timeout.ms``, ``group.consumer.heartbeat.interval.ms``) that the
client may not set. A static member (KIP-345, ``group.instance.id``) keeps its partitions
across a restart within the session timeout: no rebalance, no wait for the old session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from streamkit.errors import ConfigError, StreamkitError

GroupProtocol = Literal["classic", "consumer"]
# librdkafka refuses these with group.protocol=consumer (the broker owns them).
CLASSIC_ONLY = {
    "partition.assignment.strategy": "group.remote.assignor",
    "session.timeout.ms": "the broker's group.consumer.session.timeout.ms",
    "heartbeat.interval.ms": "the broker's group.consumer.heartbeat.interval.ms",
}


class MemberFencedError(StreamkitError):
    """The consumer hit a fatal group error: another process uses this instance id, or
    the broker still holds it for a member that crashed. The worker stops: a fenced
    consumer can neither fetch nor commit again."""


def group_defaults(protocol: str, instance_id: str | None) -> dict[str, Any]:
    """The consumer properties streamkit sets for ``protocol`` (passthrough may override)."""
    if protocol == "consumer":
        # range, as on classic: the broker's default (uniform) spreads each topic's
        # partitions over members independently, so partition N of a source and of its
        # retry tiers land on different members (measured); range keeps them together.
        conf: dict[str, Any] = {"group.protocol": "consumer", "group.remote.assignor": "range"}
    else:
        conf = {
            # range, not cooperative-sticky: a service subscribes to its sources and their
            # retry tiers, and cooperative-sticky balances partition counts across all of
            # them -- a joining member took every source partition and left the first one
            # only retry tiers (2 members ran slower than 1). range balances each topic and
            # puts partition N of a source and of its tiers on one member. Its rebalances
            # are eager, but measured a 46 ms join pause against 1 s (bench scenario 7).
            "partition.assignment.strategy": "range",
            # Members learn of a rebalance on a heartbeat: with the 3 s default a joining
            # member's partitions stood still ~3 s (cooperative: ~1.1 s with 1 s, measured).
            "heartbeat.interval.ms": 1000,
        }
    if instance_id:
        conf["group.instance.id"] = instance_id
    return conf


def protocol_of(conf: Mapping[str, Any]) -> str:
    """The group protocol ``conf`` asks for (librdkafka's default: classic)."""
    return str(conf.get("group.protocol", "classic")).strip().lower()


def check_group_conf(conf: Mapping[str, Any]) -> None:
    """One line, before librdkafka refuses the consumer with a less helpful one."""
    if protocol_of(conf) != "consumer":
        return
    for name, instead in CLASSIC_ONLY.items():
        if name in conf:
            raise ConfigError(
                f"{name} cannot be set with --group-protocol consumer (the broker owns it): "
                f"remove -X {name}, use {instead} instead"
            )


def fenced_error(reason: str, conf: Mapping[str, Any]) -> MemberFencedError:
    """The one line a fatal consumer error ends the process with."""
    instance = conf.get("group.instance.id")
    if not instance:
        return MemberFencedError(f"consumer stopped by a fatal error: {reason}")
    hint = "give each process its own --instance-id / STREAMKIT_INSTANCE_ID"
    if protocol_of(conf) == "consumer":
        hint += (
            "; with --group-protocol consumer a restart after a crash is also refused until "
            "the crashed member's session expires on the broker (use the classic protocol "
            "for fast restarts)"
        )
    return MemberFencedError(
        f"consumer fenced, group {conf.get('group.id')}, instance id {instance!r}: "
        f"{reason} ({hint}); stopping, nothing more is committed"
    )


def fatal_reason(text: str) -> str:
    """librdkafka's fatal error text without its repeated prefixes.

    ``Fatal error: Broker: Static consumer fenced by ...: Fatal consumer error: Broker:
    Static consumer fenced by ...`` -> ``Static consumer fenced by ...``.
    """
    reason = text.removeprefix("Fatal error: ")
    reason = reason.removeprefix("Broker: ")
    return reason.split(": ", 1)[0] if ": " in reason else reason

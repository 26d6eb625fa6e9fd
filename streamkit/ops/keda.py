"""A KEDA ``ScaledObject`` that scales a streamkit service on its consumer lag.

One ``kafka`` trigger per source topic, each with an explicit ``topic``: without one,
KEDA sums the lag of every topic the group committed, retry tiers included, and a
delayed retry (lag that waits on purpose) would keep replicas up. The HPA takes the
largest replica count the triggers ask for.

Sizing: KEDA asks for ``ceil(lag / lagThreshold)`` replicas per trigger, so with
``lagThreshold = rate * catch_up`` every member's share of the lag is what one member
drains in ``catch_up`` seconds at ``rate`` events/s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["KedaPlan", "scaled_object", "to_yaml"]

# Members beyond the partition count get no partition: they would idle.
MAX_REPLICAS_HINT = "at most the partition count of the source topics"


@dataclass(frozen=True)
class KedaPlan:
    """What the ScaledObject says; ``max_replicas`` ≤ the sources' partition count."""

    group: str
    topics: Sequence[str]
    max_replicas: int
    rate: float = 6000.0  # events/s of one member (examples.orders, measured; see README)
    catch_up: float = 5.0  # seconds one member's share of the lag may take to drain
    min_replicas: int = 1
    name: str | None = None  # ScaledObject and scale target name; default: the group
    kind: str = "Deployment"
    auth: str | None = None  # a TriggerAuthentication (SASL/TLS) in the same namespace
    polling_interval: int = 15
    cooldown: int = 300

    @property
    def lag_threshold(self) -> int:
        """``rate * catch_up``, at least 1 (KEDA divides by it)."""
        return max(1, round(self.rate * self.catch_up))


def scaled_object(plan: KedaPlan) -> dict[str, Any]:
    """The ScaledObject as plain data, ready for :func:`to_yaml`."""
    name = plan.name or plan.group
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": plan.kind, "name": name},
        "pollingInterval": plan.polling_interval,
        "cooldownPeriod": plan.cooldown,
        "minReplicaCount": plan.min_replicas,
        "maxReplicaCount": plan.max_replicas,
        # Every member that leaves is a rebalance of the whole group: scale down one
        # member a minute, after five quiet minutes, instead of several at once.
        "advanced": {
            "horizontalPodAutoscalerConfig": {
                "behavior": {
                    "scaleDown": {
                        "stabilizationWindowSeconds": 300,
                        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                    }
                }
            }
        },
        "triggers": [_trigger(plan, topic) for topic in plan.topics],
    }
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": name}},
        "spec": spec,
    }


def _trigger(plan: KedaPlan, topic: str) -> dict[str, Any]:
    metadata = {
        # Read from the scale target's own env: one place for the broker address.
        "bootstrapServersFromEnv": "STREAMKIT_BOOTSTRAP_SERVERS",
        "consumerGroup": plan.group,
        "topic": topic,
        "lagThreshold": str(plan.lag_threshold),
        # Leave zero replicas (if allowed) as soon as one event waits.
        "activationLagThreshold": "0",
        # streamkit starts a new group at the earliest offset; KEDA's default is latest.
        "offsetResetPolicy": "earliest",
        # A partition whose committed offset did not move between two polls has one
        # stuck key or handler: more members cannot help it (one owner per partition).
        # Activation from zero still counts that lag.
        "excludePersistentLag": "true",
    }
    trigger: dict[str, Any] = {"type": "kafka", "name": _trigger_name(topic), "metadata": metadata}
    if plan.auth:
        trigger["authenticationRef"] = {"name": plan.auth}
    return trigger


def _trigger_name(topic: str) -> str:
    """A DNS-label-like trigger name (KEDA names the HPA metric after it)."""
    return "lag-" + re.sub(r"[^a-z0-9-]+", "-", topic.lower()).strip("-")


# Plain scalars that no YAML 1.1/1.2 reader turns into a number, bool or null.
_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*$")
_SPECIAL = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def _scalar(value: Any) -> str:
    if isinstance(value, Mapping | list):
        return "{}" if isinstance(value, Mapping) else "[]"  # only empty ones get here
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _SPECIAL:
        return text
    return json.dumps(text)  # a JSON string is a valid double-quoted YAML scalar


def to_yaml(data: Mapping[str, Any], indent: int = 0) -> str:
    """Block-style YAML of nested dicts, lists and scalars (no YAML library at run time)."""
    lines: list[str] = []
    _emit(data, indent, lines)
    return "\n".join(lines) + "\n"


def _emit(data: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(data, Mapping):
        for key, value in data.items():
            if isinstance(value, Mapping | list) and value:
                lines.append(f"{pad}{key}:")
                _emit(value, indent + (2 if isinstance(value, Mapping) else 0), lines)
            else:
                lines.append(f"{pad}{key}: {_scalar(value)}")
        return
    if not isinstance(data, list):
        lines.append(f"{pad}{_scalar(data)}")
        return
    for item in data:
        sub: list[str] = []
        _emit(item, indent + 2, sub)
        first = sub[0]
        lines.append(f"{pad}- {first[indent + 2 :]}")
        lines.extend(sub[1:])

"""Permission preflight: find a missing ACL at start-up, not at the first failure.

A consumer that may not write its DLQ would otherwise run until its first failing record
and then stall on it. ``DescribeTopics`` and ``DescribeGroups`` can report the operations
the caller is allowed (KIP-430 ``include_authorized_operations``), and unlike
``DescribeAcls`` they need no admin rights, so any principal can check itself. A broker
without an authorizer reports nothing to check, and the preflight passes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AclOperation  # type: ignore[attr-defined]

from streamkit.errors import AccessDeniedError

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

    from streamkit.consumer.runtime import Worker
    from streamkit.ops.replay import ReplayOptions

READ, WRITE, DESCRIBE = AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE
# The coordinator of a new cluster needs a moment (the offsets topic is created lazily).
COORDINATOR_WAIT = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
}


@dataclass
class Access:
    """What a command needs: operations on topics and on consumer groups."""

    topics: dict[str, set[Any]] = field(default_factory=dict)
    groups: dict[str, set[Any]] = field(default_factory=dict)

    def topic(self, names: Iterable[str], op: Any) -> Access:
        """Also need ``op`` on each topic of ``names``."""
        for name in names:
            self.topics.setdefault(name, set()).add(op)
        return self

    def group(self, name: str, op: Any = READ) -> Access:
        """Also need ``op`` (by default Read: join, fetch and commit offsets) on ``name``."""
        self.groups.setdefault(name, set()).add(op)
        return self


def worker_access(worker: Worker) -> Access:
    """A worker reads its sources and retry tiers, writes its tiers, DLQs and publish
    targets, and uses its group."""
    router, s = worker.router, worker.settings
    targets = {*(router.publish_topics | s.publish_topics).values(), s.default_publish_topic}
    return (
        Access()
        .topic(worker.tiers, READ)
        .topic(worker.derived_topics(), WRITE)
        .topic(sorted(t for t in targets if t), WRITE)
        .group(worker.group)
    )


def replay_access(options: ReplayOptions) -> Access:
    """`streamkit replay` reads the DLQ with its own group and writes ``--to``.

    The default targets (each record's retry tier) are known only once a record is read;
    a refused one fails that record, named in the report.
    """
    access = Access().topic([options.dlq_topic], READ)
    if options.dry_run:  # reads the replay group's offsets, commits nothing
        return access.group(options.replay_group, DESCRIBE)
    if options.to:
        access.topic([options.to], WRITE)
    return access.group(options.replay_group, READ)


def check_access(
    admin: AdminClient, access: Access, settings: Mapping[str, Any], timeout: float
) -> None:
    """Raise :class:`AccessDeniedError` (one line naming each ACL to add) if ``access``
    is not granted. Topics that do not exist are left to the topic checks."""
    missing = _topic_gaps(admin, access.topics, timeout) + _group_gaps(
        admin, access.groups, timeout
    )
    if missing:
        principal = _principal(settings)
        raise AccessDeniedError(
            f"{principal} lacks permissions: "
            + "; ".join(advice(kind, name, op, principal) for kind, name, op in missing)
        )


Gap = tuple[str, str, Any]  # ("topic" | "group", name, operation)


def _topic_gaps(admin: AdminClient, needs: dict[str, set[Any]], timeout: float) -> list[Gap]:
    if not needs:
        return []
    futures = admin.describe_topics(
        TopicCollection(sorted(needs)), request_timeout=timeout, include_authorized_operations=True
    )
    gaps: list[Gap] = []
    for name, future in futures.items():
        try:
            allowed = future.result(timeout).authorized_operations
        except KafkaException as exc:
            code = exc.args[0].code()
            if code != KafkaError.TOPIC_AUTHORIZATION_FAILED:
                continue  # unknown topic and the like: reported by the topic checks
            allowed = []  # not even Describe
        gaps += [("topic", name, op) for op in _missing(needs[name], allowed)]
    return gaps


def _group_gaps(admin: AdminClient, needs: dict[str, set[Any]], timeout: float) -> list[Gap]:
    gaps: list[Gap] = []
    deadline = time.monotonic() + timeout
    for name, ops in sorted(needs.items()):
        while True:
            try:
                future = admin.describe_consumer_groups(
                    [name], request_timeout=timeout, include_authorized_operations=True
                )[name]
                allowed = future.result(timeout).authorized_operations
                break
            except KafkaException as exc:
                code = exc.args[0].code()
                if code in COORDINATOR_WAIT and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                if code != KafkaError.GROUP_AUTHORIZATION_FAILED:
                    raise AccessDeniedError(
                        f"cannot check access to group {name}: {exc.args[0].str()}"
                    ) from None
                allowed = []
                break
        gaps += [("group", name, op) for op in _missing(ops, allowed)]
    return gaps


def _missing(needed: set[Any], allowed: list[Any] | None) -> list[Any]:
    """Operations of ``needed`` not in ``allowed`` (None: the broker did not say; pass).

    Read and Write imply Describe, and ALL implies everything, as in Kafka's authorizer.
    """
    if allowed is None:
        return []
    have = set(allowed)
    if AclOperation.ALL in have:
        return []
    if have & {READ, WRITE}:
        have.add(DESCRIBE)
    return sorted((op for op in needed if op not in have), key=lambda op: op.value)


def _principal(settings: Mapping[str, Any]) -> str:
    user = settings.get("sasl.username")
    return f"User:{user}" if user else "the client's principal"


def denied(kind: str, name: str, op: Any, settings: Mapping[str, Any]) -> AccessDeniedError:
    """The one-line error for one refused operation, naming the ACL to add."""
    principal = _principal(settings)
    return AccessDeniedError(f"{principal} lacks permissions: {advice(kind, name, op, principal)}")


def advice(kind: str, name: str, op: Any, principal: str) -> str:
    """``TOPIC_AUTHORIZATION_FAILED on NAME: Write (add ACL: ...)``."""
    error = "TOPIC_AUTHORIZATION_FAILED" if kind == "topic" else "GROUP_AUTHORIZATION_FAILED"
    who = principal if principal.startswith("User:") else "User:<principal>"
    verb = op.name.capitalize()
    return (
        f"{error} on {name}: {verb} "
        f"(add ACL: --allow-principal {who} --operation {verb} --{kind} {name})"
    )

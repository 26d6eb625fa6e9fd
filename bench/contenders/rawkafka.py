"""Shared pieces of the hand-written confluent-kafka loops."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from bench.contenders.common import Recorder


def consumer(spec: dict[str, Any]) -> Consumer:
    """An at-least-once consumer: no auto commit, no auto offset store."""
    c = Consumer(
        {
            "bootstrap.servers": spec["bootstrap"],
            "group.id": spec["group"],
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            **spec.get("kafka", {}),  # librdkafka overrides, for experiments
        }
    )
    c.subscribe([spec["topic"]])
    return c


def commit_batch(c: Consumer, msgs: list[Any]) -> None:
    """Commit one past the last offset of each partition in ``msgs``, asynchronously."""
    positions: dict[tuple[str, int], int] = {}
    for m in msgs:
        positions[(m.topic(), m.partition())] = m.offset() + 1
    offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
    c.commit(offsets=offsets, asynchronous=True)


def close(c: Consumer) -> None:
    """Final synchronous commit of what was stored, then leave the group."""
    c.close()


def producer(spec: dict[str, Any], failed: Callable[[Any, Any], None]) -> Producer:
    """The producer settings streamkit uses (idempotent, acks=all, lz4, linger 5 ms).

    ``failed(err, msg)`` hears of each failed delivery, and only of those
    (``delivery.report.only.error``): ``flush`` returns once every record is settled,
    acknowledged or not, so a loop that loses nothing must hear of the failures -- and
    the successes then cost it nothing.
    """
    return Producer({"bootstrap.servers": spec["bootstrap"], "enable.idempotence": True,
                     "acks": "all", "linger.ms": 5, "compression.type": "lz4",
                     "delivery.report.only.error": True, "on_delivery": failed})  # fmt: skip


def produce_loop(spec: dict[str, Any], send: Callable[[Producer, Any], None]) -> dict[str, Any]:
    """consume(500) -> ``send(producer, record)`` each -> flush -> one async commit per batch.

    The least an at-least-once consume -> produce loop does: every output acknowledged
    before its input is committed (commit before the flush and a crash loses outputs;
    commit after a failed delivery and the output is lost).
    """
    rec = Recorder(spec)
    failures: list[Any] = []
    c, p = consumer(spec), producer(spec, lambda err, _msg: failures.append(err))
    done = False
    while not done:
        msgs = c.consume(500, 0.1)
        for i, m in enumerate(msgs):
            if m.error() is not None:
                continue
            send(p, m)
            if rec.hit():
                done, msgs = True, msgs[: i + 1]  # commit only what was handled
                break
        if msgs:
            # Not committed past an output that was not acknowledged: stop (a rerun
            # handles the batch again).
            if p.flush(30) or failures:
                raise RuntimeError(f"outputs not delivered: {failures[:1] or 'flush timed out'}")
            commit_batch(c, msgs)
    close(c)
    return rec.result(spec)

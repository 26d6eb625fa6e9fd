"""Scenario 6's reference: a hand-written consume -> produce loop over a DLQ.

consume(500) -> produce each record as it is (key, value, headers) to the retry tier ->
``flush`` (every copy settled; a failed one stops the loop uncommitted) -> one asynchronous
commit of the batch: the least a replay that loses nothing does. No header rewriting and
no ledger (streamkit's replay writes a ledger record per replayed record, so a rerun
skips it).
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer

from bench.contenders.rawkafka import produce_loop


def run(spec: dict[str, Any]) -> dict[str, Any]:
    out = spec["output_topic"]

    def copy(p: Producer, m: Any) -> None:
        p.produce(out, m.value(), key=m.key(), headers=m.headers())

    return produce_loop(spec, copy)

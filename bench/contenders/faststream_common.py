"""FastStream, either backend: one subscriber with the typed envelope, logging off.

Defaults otherwise (ack policy ACK_FIRST: the client's periodic auto-commit), which is
FastStream's documented default and its fastest at-least-once-ish setting.

``mode: relay`` (scenario 8): the subscriber is stacked under ``@broker.publisher`` on
``output_topic`` and returns one ``KafkaResponse`` per event (the output envelope, key the
order id, header ``event_type: order.relayed``); FastStream publishes it after the handler
returns and awaits its delivery report before taking the next message. Offsets are still
the client's auto-commit, not tied to the outputs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.contenders.common import Recorder
from bench.workload import OrderEnvelope


def run_with(broker_cls: Any, spec: dict[str, Any], response_cls: Any = None) -> dict[str, Any]:
    rec = Recorder(spec)
    asyncio.run(_main(broker_cls, spec, rec, response_cls))
    return rec.result(spec)


def _subscriber_options(spec: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {"group_id": spec["group"], "auto_offset_reset": "earliest"}
    if spec.get("max_workers"):
        options["max_workers"] = int(spec["max_workers"])
    return options


async def _main(broker_cls: Any, spec: dict[str, Any], rec: Recorder, response_cls: Any) -> None:
    done = asyncio.Event()
    broker = broker_cls(spec["bootstrap"], logger=None)
    if spec.get("mode") == "relay":
        _relay(broker, spec, rec, done, response_cls)
    else:
        _consume(broker, spec, rec, done)
    await broker.start()
    await done.wait()
    # stop() waits (graceful_timeout, 15 s) for the handler in flight: the last output
    # is published before the broker closes.
    await asyncio.wait_for(broker.stop(), 30)


def _consume(broker: Any, spec: dict[str, Any], rec: Recorder, done: asyncio.Event) -> None:
    sleep_s = float(spec.get("sleep_s", 0))

    @broker.subscriber(spec["topic"], **_subscriber_options(spec))  # type: ignore[misc]
    async def handle(body: OrderEnvelope) -> None:
        event = body.data
        if sleep_s:
            rec.order(event.order_id, event.seq)
            await asyncio.sleep(sleep_s)
        if rec.hit():
            done.set()


def _relay(
    broker: Any, spec: dict[str, Any], rec: Recorder, done: asyncio.Event, response_cls: Any
) -> None:
    """consume -> validate -> one envelope to ``output_topic`` per event (publisher decorator)."""
    from bench.contenders.relay_common import HEADER_EVENT_TYPE, RELAYED, relayed

    headers = {HEADER_EVENT_TYPE: RELAYED}

    @broker.publisher(spec["output_topic"])  # type: ignore[misc]
    @broker.subscriber(spec["topic"], **_subscriber_options(spec))  # type: ignore[misc]
    async def handle(body: OrderEnvelope) -> Any:
        event = body.data
        if rec.hit():
            done.set()
        value = relayed(event.seq, event.ts)
        # bytes: the aiokafka backend does not encode a str key (confluent does)
        return response_cls(value, key=event.order_id.encode(), headers=headers)

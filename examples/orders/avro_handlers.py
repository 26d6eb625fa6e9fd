"""The orders service on Avro records and a schema registry.

Run it with ``STREAMKIT_SCHEMA_REGISTRY=URL streamkit run examples.orders.avro_handlers -g
orders-avro`` (a local registry: ``scripts/schema-registry-local start`` prints the URL);
publish sample orders with ``python -m examples.orders.produce --schema-registry URL``.
Same handler as ``handlers.py``: only the models and the codec differ.
"""

from __future__ import annotations

import os

from dataclasses_avroschema.pydantic import AvroBaseModel

from streamkit import Context, ExponentialBackoff, RetryPolicy, Router
from streamkit.codecs.avro import AvroCodec


class OrderCreated(AvroBaseModel):
    order_id: str
    amount_cents: int

    class Meta:
        namespace = "com.example.orders"  # the record name routes: com.example.orders.OrderCreated


class InvoiceRequested(AvroBaseModel):
    order_id: str
    amount_cents: int

    class Meta:
        namespace = "com.example.orders"


REGISTRY = os.environ.get("STREAMKIT_SCHEMA_REGISTRY", "http://127.0.0.1:8081")
codec = AvroCodec(
    REGISTRY, models={"order.created": OrderCreated, "invoice.requested": InvoiceRequested}
)
router = Router(
    topics=["orders-avro"], codec=codec, publish_topics={"invoice.requested": "invoices-avro"}
)


@router.handler(
    "order.created",
    retry=RetryPolicy(max_attempts=3, backoff=ExponentialBackoff(base=0.2, max_delay=2)),
)
async def on_order_created(event: OrderCreated, ctx: Context) -> None:
    """Ask for an invoice (Avro, schema registered on first publish); negative: the DLQ."""
    if event.amount_cents < 0:
        raise ValueError(f"negative amount for order {event.order_id}")
    await ctx.publish(
        "invoice.requested",
        InvoiceRequested(order_id=event.order_id, amount_cents=event.amount_cents),
        key=event.order_id,
    )

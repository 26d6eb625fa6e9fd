"""The orders service: run it with ``streamkit run examples.orders.handlers -g orders``."""

from __future__ import annotations

from pydantic import BaseModel

from streamkit import Context, ExponentialBackoff, RetryPolicy, Router

router = Router(topics=["orders"], publish_topics={"invoice.requested": "invoices"})


class OrderCreated(BaseModel):
    order_id: str
    amount_cents: int


class InvoiceRequested(BaseModel):
    order_id: str
    amount_cents: int


@router.handler(
    "order.created",
    retry=RetryPolicy(max_attempts=3, backoff=ExponentialBackoff(base=0.2, max_delay=2)),
)
async def on_order_created(event: OrderCreated, ctx: Context) -> None:
    """Ask for an invoice; a negative amount is a bug upstream and ends in the DLQ."""
    if event.amount_cents < 0:
        raise ValueError(f"negative amount for order {event.order_id}")
    await ctx.publish(
        "invoice.requested",
        InvoiceRequested(order_id=event.order_id, amount_cents=event.amount_cents),
        key=event.order_id,
    )

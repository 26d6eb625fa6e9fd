"""A service as a user writes it: module-level handlers, configured in one call."""

from pydantic import BaseModel

import streamkit
from streamkit import Context, FixedBackoff, RetryPolicy, handler

streamkit.configure(
    topics=["payments"],
    on_unknown="skip",
    publish_topics={"receipt.requested": "receipts"},
    retry=RetryPolicy(max_attempts=3, backoff=FixedBackoff(30)),
)


class Payment(BaseModel):
    payment_id: str
    cents: int


@handler("payment.authorized")
async def on_authorized(payment: Payment, ctx: Context) -> None:
    if payment.cents < 0:
        raise ValueError("negative amount")
    if payment.payment_id == "flaky" and ctx.attempt == 1:
        raise ConnectionError("bank down")
    await ctx.publish("receipt.requested", {"payment_id": payment.payment_id})


@handler("payment.refunded")
def on_refunded(payment: Payment) -> None:
    pass

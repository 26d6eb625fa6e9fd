"""A third wire format is one new module (tests/seams/lengthprefixed.py) on the codec seam."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from streamkit import Context, FixedBackoff, RetryPolicy, Router
from streamkit import envelope as env
from tests.behaviour.backends import Backend
from tests.seams.lengthprefixed import LengthPrefixed

CODEC = LengthPrefixed()


class Payment(BaseModel):
    payment_id: str
    cents: int


def test_records_route_decode_and_publish_through_a_new_codec(
    run_on: Callable[..., None],
) -> None:
    router = Router(
        topics=["payments"],
        codec=CODEC,
        retry=RetryPolicy(max_attempts=2, backoff=FixedBackoff(0)),
        publish_topics={"receipt.requested": "receipts"},
    )
    seen: list[Payment] = []

    @router.handler("payment.authorized")
    async def on(payment: Payment, ctx: Context) -> None:
        seen.append(payment)
        await ctx.publish("receipt.requested", {"payment_id": payment.payment_id})

    async def scenario(b: Backend) -> None:
        # No event_type header: the codec finds the type inside the value.
        await b.send_raw(
            CODEC.encode("payment.authorized", {"payment_id": "p1", "cents": 5}, event_id="x")
        )
        await b.send_raw(b"\x00")  # too short for its prefix: bad input
        await b.settle()
        assert seen == [Payment(payment_id="p1", cents=5)]
        [receipt] = await b.records(b.topic("receipts"))  # type: ignore[attr-defined]
        assert CODEC.route(receipt.value or b"")[0] == "receipt.requested"
        assert CODEC.describe(receipt.value or b"")["data"] == {"payment_id": "p1"}
        assert receipt.header(env.HEADER_EVENT_TYPE) == "receipt.requested"
        [dead] = await b.records(router.topic_names.dlq(b.source, b.group))
        assert (dead.value, dead.header(env.H_ERROR_TYPE)) == (b"\x00", "DecodeError")

    run_on(router, scenario, extra_topics=["receipts"])

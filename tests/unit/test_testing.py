import asyncio
import contextvars
from typing import Any

from pydantic import BaseModel

from streamkit import Context, FixedBackoff, RetryPolicy, Router
from streamkit import envelope as env
from streamkit.testing import TestBroker


class Order(BaseModel):
    order_id: str
    amount_cents: int


def make_router() -> tuple[Router, list[tuple[str, int]]]:
    router = Router(topics=["orders"], publish_topics={"invoice.requested": "invoices"})
    calls: list[tuple[str, int]] = []

    @router.handler("order.created", retry=RetryPolicy(max_attempts=3, backoff=FixedBackoff(60)))
    async def on_order(order: Order, ctx: Context) -> None:
        calls.append((order.order_id, ctx.attempt))
        if order.amount_cents < 0:
            raise ValueError("negative amount")
        if order.order_id == "flaky" and ctx.attempt == 1:
            raise ConnectionError("try again")
        await ctx.publish("invoice.requested", {"order_id": order.order_id}, key=order.order_id)

    return router, calls


def test_handlers_run_publish_retry_and_dead_letter_in_memory() -> None:
    router, calls = make_router()

    async def scenario() -> TestBroker:
        async with TestBroker(router, group="billing") as broker:
            await broker.publish("order.created", {"order_id": "o1", "amount_cents": 5})
            await broker.publish("order.created", {"order_id": "flaky", "amount_cents": 5})
            await broker.publish("order.created", {"order_id": "bad", "amount_cents": -1})
            await broker.send_raw(b"{not json", headers=[("event_type", b"order.created")])
            return broker

    broker = asyncio.run(scenario())
    assert broker.published("invoice.requested") == [{"order_id": "o1"}, {"order_id": "flaky"}]
    assert calls.count(("flaky", 2)) == 1
    assert [c for c in calls if c[0] == "bad"] == [("bad", 1), ("bad", 2), ("bad", 3)]
    dead: Any = broker.dead_letters
    assert [d.header(env.H_ERROR_TYPE) for d in dead] == ["ValueError", "DecodeError"]
    assert dead[1].value() == b"{not json"
    assert dead[0].header(env.H_ORIGINAL_TOPIC) == "orders"


def test_a_plain_sync_handler_is_retried_exactly_max_attempts_times() -> None:
    router = Router(topics=["t"], retry=RetryPolicy(max_attempts=3, backoff=FixedBackoff(0)))
    calls: list[int] = []

    @router.handler("e")
    def always_fails(data: dict[str, Any]) -> None:  # plain: no ctx, sync
        calls.append(data["n"])
        raise RuntimeError("down")

    async def scenario() -> TestBroker:
        async with TestBroker(router) as broker:
            await broker.publish("e", {"n": 1})
            return broker

    broker = asyncio.run(scenario())
    assert calls == [1, 1, 1]
    assert [d.header(env.H_ATTEMPT) for d in broker.dead_letters] == ["3"]


def test_a_config_error_from_ctx_publish_goes_to_the_dlq_at_once() -> None:
    router = Router(topics=["orders"], retry=RetryPolicy(max_attempts=3, backoff=FixedBackoff(0)))
    attempts: list[int] = []

    @router.handler("order.created")
    async def on(data: dict[str, Any], ctx: Context) -> None:
        attempts.append(ctx.attempt)
        await ctx.publish("receipt.requested", data)  # no topic mapped: can never work

    async def scenario() -> TestBroker:
        async with TestBroker(router) as broker:
            await broker.publish("order.created", {"id": 1})
            return broker

    broker = asyncio.run(scenario())
    assert attempts == [1]
    [dead] = broker.dead_letters
    assert dead.header(env.H_ERROR_TYPE) == "ConfigError"
    assert "no topic for event type 'receipt.requested'" in (dead.header(env.H_ERROR_MESSAGE) or "")


TENANT: "contextvars.ContextVar[str | None]" = contextvars.ContextVar("tenant", default=None)


def test_handlers_see_the_contextvars_the_test_set_before_publishing() -> None:
    # A test that sets a tenant (or binds structlog values) before publish: async and
    # sync handlers alike start from that context, as they run for that publish.
    router = Router(topics=["orders"])
    seen: list[tuple[str, str | None]] = []

    @router.handler("a")
    async def on_a(data: dict[str, Any]) -> None:
        seen.append(("async", TENANT.get()))

    @router.handler("s")
    def on_s(data: dict[str, Any]) -> None:
        seen.append(("sync", TENANT.get()))

    async def scenario() -> None:
        async with TestBroker(router) as broker:
            TENANT.set("t1")
            await broker.publish("a", {})
            await broker.publish("s", {})

    asyncio.run(scenario())
    assert seen == [("async", "t1"), ("sync", "t1")]

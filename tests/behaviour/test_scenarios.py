"""What a service team relies on, written once, run on TestBroker and on a real broker.

Each scenario is a contract: if the in-memory double and the real worker ever disagree,
one of the two parameters fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from streamkit import Context, FixedBackoff, RetryPolicy, Router
from streamkit import envelope as env
from tests.behaviour.backends import Backend

FAST = RetryPolicy(max_attempts=3, backoff=FixedBackoff(0))
Run = Callable[..., None]


class Order(BaseModel):
    order_id: str
    amount_cents: int


def _router(**kwargs: Any) -> Router:
    return Router(topics=["orders"], retry=FAST, **kwargs)


def test_happy_path_handles_each_event_once_and_commits(run_on: Run) -> None:
    router, seen = _router(), []

    @router.handler("order.created")
    def on(order: Order) -> None:
        seen.append(order.order_id)

    async def scenario(b: Backend) -> None:
        for n in range(3):
            await b.send("order.created", {"order_id": f"o{n}", "amount_cents": n}, key=f"k{n}")
        await b.settle()
        assert seen == ["o0", "o1", "o2"]
        assert await b.committed() == 3
        assert await b.records(router.topic_names.dlq(b.source, b.group)) == []

    run_on(router, scenario)


def test_retry_then_success_runs_twice_and_dead_letters_nothing(run_on: Run) -> None:
    router, attempts = _router(), []

    @router.handler("order.created")
    async def on(order: Order, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise ConnectionError("database down")

    async def scenario(b: Backend) -> None:
        await b.send("order.created", {"order_id": "o1", "amount_cents": 1})
        await b.settle()
        assert attempts == [1, 2]
        assert len(await b.records(router.topic_names.retry(b.source, b.group, 1))) == 1
        assert await b.records(router.topic_names.dlq(b.source, b.group)) == []

    run_on(router, scenario)


def test_after_max_attempts_the_event_is_in_the_dlq_with_its_headers(run_on: Run) -> None:
    router, attempts = _router(), []

    @router.handler("order.created")
    def on(order: Order, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        raise RuntimeError("always down")

    async def scenario(b: Backend) -> None:
        await b.send("order.created", {"order_id": "o1", "amount_cents": 1}, key="o1")
        await b.settle()
        assert attempts == [1, 2, 3]
        [dead] = await b.records(router.topic_names.dlq(b.source, b.group))
        assert dead.key == b"o1"
        assert dead.header(env.H_ERROR_TYPE) == "RuntimeError"
        assert dead.header(env.H_ERROR_MESSAGE) == "always down"
        assert dead.header(env.H_ATTEMPT) == "3"
        assert dead.header(env.H_ORIGINAL_TOPIC) == b.source
        assert dead.header(env.H_ORIGINAL_OFFSET) == "0"
        assert dead.header(env.H_GROUP) == b.group
        assert "RuntimeError" in (dead.header(env.H_ERROR_TRACEBACK) or "")
        assert [k for k, _ in dead.headers].count(env.H_ORIGINAL_TOPIC) == 1
        assert await b.committed() == 1

    run_on(router, scenario)


def test_a_handler_without_a_context_counts_its_attempts_through_the_tiers(
    run_on: Run,
) -> None:
    # The worker's hot path takes a retry tier's record too: its attempt is read from
    # the record's headers there, whether or not the handler asks for a Context.
    router, calls = _router(), []

    @router.handler("order.created")
    def on(order: Order) -> None:
        calls.append(order.order_id)
        raise RuntimeError("always down")

    async def scenario(b: Backend) -> None:
        await b.send("order.created", {"order_id": "o1", "amount_cents": 1}, key="o1")
        await b.settle()
        assert calls == ["o1"] * 3
        [second] = await b.records(router.topic_names.retry(b.source, b.group, 2))
        assert second.header(env.H_ATTEMPT) == "3"
        [dead] = await b.records(router.topic_names.dlq(b.source, b.group))
        assert dead.header(env.H_ATTEMPT) == "3"
        assert dead.header(env.H_ORIGINAL_OFFSET) == "0"

    run_on(router, scenario)


def test_a_non_retryable_error_goes_to_the_dlq_on_the_first_attempt(run_on: Run) -> None:
    router = Router(topics=["orders"], retry=RetryPolicy(3, FixedBackoff(0), (ValueError,)))
    attempts: list[int] = []

    @router.handler("order.created")
    def on(order: Order, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        raise ValueError("negative amount")

    async def scenario(b: Backend) -> None:
        await b.send("order.created", {"order_id": "o1", "amount_cents": -1})
        await b.settle()
        assert attempts == [1]
        [dead] = await b.records(router.topic_names.dlq(b.source, b.group))
        assert (dead.header(env.H_ERROR_TYPE), dead.header(env.H_ATTEMPT)) == ("ValueError", "1")

    run_on(router, scenario)


def test_bad_input_goes_to_the_dlq_byte_for_byte_and_the_next_event_runs(run_on: Run) -> None:
    router, seen = _router(), []

    @router.handler("order.created")
    def on(order: Order) -> None:
        seen.append(order.order_id)

    async def scenario(b: Backend) -> None:
        await b.send_raw(b"{not json", headers=[("event_type", b"order.created")])
        await b.send_raw(b"\xff\xfe", headers=[("event_type", b"order.created")])
        await b.send("order.created", {"order_id": "o1", "amount_cents": 1})
        await b.settle()
        assert seen == ["o1"]
        dead = await b.records(router.topic_names.dlq(b.source, b.group))
        assert [d.value for d in dead] == [b"{not json", b"\xff\xfe"]
        assert {d.header(env.H_ERROR_TYPE) for d in dead} == {"DecodeError"}
        assert await b.committed() == 3

    run_on(router, scenario)


def test_an_unknown_event_type_is_dead_lettered_by_default(run_on: Run) -> None:
    router = _router()

    @router.handler("order.created")
    def on(order: Order) -> None:
        pass

    async def scenario(b: Backend) -> None:
        await b.send("order.refunded", {"order_id": "o1"})
        await b.settle()
        [dead] = await b.records(router.topic_names.dlq(b.source, b.group))
        assert dead.header(env.H_ERROR_TYPE) == "UnknownEventType"
        assert "order.refunded" in (dead.header(env.H_ERROR_MESSAGE) or "")

    run_on(router, scenario)


def test_ctx_publish_is_acknowledged_before_the_offset_is_committed(run_on: Run) -> None:
    router = _router(publish_topics={"invoice.requested": "invoices"})

    @router.handler("order.created")
    async def on(order: Order, ctx: Context) -> None:
        await ctx.publish("invoice.requested", {"order_id": order.order_id}, key=order.order_id)

    async def scenario(b: Backend) -> None:
        await b.send("order.created", {"order_id": "o1", "amount_cents": 1})
        await b.settle()
        assert await b.committed() == 1
        [invoice] = await b.records(b.topic("invoices"))  # type: ignore[attr-defined]
        assert invoice.key == b"o1"
        assert invoice.header(env.HEADER_EVENT_TYPE) == "invoice.requested"
        assert env.loads(invoice.value or b"")["data"] == {"order_id": "o1"}

    run_on(router, scenario, extra_topics=["invoices"])


def test_ctx_emit_is_confirmed_before_the_offset_is_committed(run_on: Run) -> None:
    # Kafka: the commit point flushes the emitter first; in memory: published and tracked.
    router = _router(publish_topics={"invoice.requested": "invoices"})

    @router.handler("order.created")
    def on(order: Order, ctx: Context) -> None:
        ctx.emit("invoice.requested", {"order_id": order.order_id}, key=order.order_id)

    async def scenario(b: Backend) -> None:
        for n in range(3):
            await b.send("order.created", {"order_id": f"o{n}", "amount_cents": n}, key=f"k{n}")
        await b.settle()
        assert await b.committed() == 3
        invoices = await b.records(b.topic("invoices"))  # type: ignore[attr-defined]
        assert sorted(i.key for i in invoices) == [b"o0", b"o1", b"o2"]
        assert {i.header(env.HEADER_EVENT_TYPE) for i in invoices} == {"invoice.requested"}

    run_on(router, scenario, extra_topics=["invoices"])


def test_a_topic_handler_takes_foreign_records_with_no_event_type(run_on: Run) -> None:
    # Another team's topic: bare JSON, no event_type header or field, types we don't know.
    topic = f"payments-{uuid.uuid4().hex[:8]}"
    router = Router(retry=FAST)
    seen: list[dict[str, Any]] = []

    @router.handler(topic=topic, envelope=False)
    def on_payment(data: dict[str, Any], ctx: Context) -> None:
        seen.append({**data, "type": ctx.event_type})

    async def scenario(b: Backend) -> None:
        await b.send_raw(b'{"id": 1}')
        await b.send_raw(b'{"id": 2}', headers=[("event_type", b"their.own.type")])
        await b.settle()
        assert seen == [{"id": 1, "type": topic}, {"id": 2, "type": "their.own.type"}]
        assert await b.committed() == 2

    run_on(router, scenario, source=topic)


def test_a_catch_all_takes_the_types_no_handler_claims(run_on: Run) -> None:
    router, seen = _router(), []

    @router.handler("order.created")
    def on_order(order: Order) -> None:
        seen.append("order")

    @router.handler("*")
    def anything_else(data: dict[str, Any], ctx: Context) -> None:
        seen.append(ctx.event_type)

    async def scenario(b: Backend) -> None:
        await b.send("order.created", {"order_id": "o1", "amount_cents": 1})
        await b.send("order.refunded", {"order_id": "o1"})
        await b.settle()
        assert seen == ["order", "order.refunded"]
        assert await b.records(router.topic_names.dlq(b.source, b.group)) == []

    run_on(router, scenario)


def test_unknown_types_are_skipped_and_committed_when_asked(run_on: Run) -> None:
    router, seen = _router(on_unknown="skip"), []

    @router.handler("order.created")
    def on_order(order: Order) -> None:
        seen.append(order.order_id)

    async def scenario(b: Backend) -> None:
        await b.send("order.refunded", {"order_id": "o1"})
        await b.send("order.created", {"order_id": "o2", "amount_cents": 1})
        await b.settle()
        assert seen == ["o2"]
        assert await b.records(router.topic_names.dlq(b.source, b.group)) == []
        assert await b.committed() == 2

    run_on(router, scenario)

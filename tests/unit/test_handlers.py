from datetime import datetime
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from streamkit import ConfigError, Context, Event, Router
from streamkit.codecs import NOT_PARSED
from streamkit.envelope import encode_envelope
from streamkit.errors import DecodeError, SchemaError


class Order(BaseModel):
    order_id: str
    amount_cents: int


def test_model_handler_decodes_in_one_pass() -> None:
    router = Router()

    @router.handler("order.created")
    def on_order(order: Order) -> None: ...

    spec = router.get("order.created")
    assert spec is not None and not spec.is_async and not spec.wants_ctx
    raw = encode_envelope("order.created", {"order_id": "a", "amount_cents": 3}, event_id="e1")
    payload, event_id = spec.decode(raw, NOT_PARSED)
    assert payload == Order(order_id="a", amount_cents=3)
    assert event_id == "e1"
    # Routing may already have parsed the value: no second parse, same result.
    assert spec.decode(raw, orjson.loads(raw))[0] == payload


def test_bad_input_errors() -> None:
    router = Router()

    @router.handler("t")
    def on_order(order: Order) -> None: ...

    spec = router.get("t")
    assert spec is not None
    cases = {
        b"{not json": DecodeError,
        b"\xff\xfe\x00": DecodeError,
        b'{"event_id":"e","event_type":"t","occurred_at":"2026-01-01T00:00:00Z",'
        b'"data":{"order_id":"a","amount_cents":"lots"}}': SchemaError,
        b'{"event_id":"e","event_type":"t","occurred_at":"2026-01-01T00:00:00Z"}': SchemaError,
    }
    for raw, error in cases.items():
        with pytest.raises(error) as info:
            spec.decode(raw, NOT_PARSED)
        assert info.value.raw == raw  # type: ignore[attr-defined]


def test_dict_bytes_and_event_handlers() -> None:
    router = Router()

    @router.handler("d")
    async def on_dict(data: dict[str, Any], ctx: Context) -> None: ...

    @router.handler("b")
    def on_bytes(raw: bytes) -> None: ...

    @router.handler("e")
    def on_event(event: Event) -> None: ...

    raw = encode_envelope("d", {"x": 1}, event_id="id")
    d, b, e = router.get("d"), router.get("b"), router.get("e")
    assert d is not None and b is not None and e is not None
    assert d.is_async and d.wants_ctx
    assert d.decode(raw, NOT_PARSED) == ({"x": 1}, "id")
    assert b.decode(raw, NOT_PARSED) == (raw, None)
    event, _ = e.decode(raw, NOT_PARSED)
    assert isinstance(event, Event) and event.data == {"x": 1}
    assert isinstance(event.occurred_at, datetime)


def test_bare_payload_handler() -> None:
    router = Router()

    @router.handler("bare", envelope=False)
    def on_bare(order: Order) -> None: ...

    spec = router.get("bare")
    assert spec is not None
    assert spec.decode(b'{"order_id":"a","amount_cents":1}', NOT_PARSED)[0].order_id == "a"


def test_two_handlers_for_one_type_name_both() -> None:
    router = Router()

    @router.handler("x")
    def first(data: dict[str, Any]) -> None: ...

    with pytest.raises(ConfigError, match=r"first.*second"):

        @router.handler("x")
        def second(data: dict[str, Any]) -> None: ...


@pytest.mark.parametrize(
    "fn",
    [
        lambda: None,
        lambda a, b, c: None,
    ],
)
def test_wrong_arity_is_rejected(fn: Any) -> None:
    with pytest.raises(ConfigError, match="must take"):
        Router().add("x", fn)


def test_unannotated_or_unsupported_payload_is_rejected() -> None:
    def no_annotation(event):  # type: ignore[no-untyped-def]
        ...

    def wrong(event: int) -> None: ...

    def bad_ctx(event: dict[str, Any], ctx: int) -> None: ...

    for fn, match in [(no_annotation, "no_annotation"), (wrong, "wrong"), (bad_ctx, "Context")]:
        with pytest.raises(ConfigError, match=match):
            Router().add("x", fn)


def test_option_checks() -> None:
    def sync(event: dict[str, Any]) -> None: ...

    async def coro(event: dict[str, Any]) -> None: ...

    with pytest.raises(ConfigError, match="blocking"):
        Router().add("x", coro, blocking=True)
    with pytest.raises(ConfigError, match="timeout"):
        Router().add("x", sync, timeout=1.0)
    with pytest.raises(ConfigError, match="ordering"):
        Router().add("x", coro, ordering="sideways")  # type: ignore[arg-type]


def test_retry_tiers_follow_the_longest_policy() -> None:
    from streamkit import RetryPolicy

    router = Router(retry=RetryPolicy(max_attempts=2))

    @router.handler("a", retry=RetryPolicy(max_attempts=4))
    def a(event: dict[str, Any]) -> None: ...

    @router.handler("b")
    def b(event: dict[str, Any]) -> None: ...

    assert router.retry_tiers == 3


def test_include_merges_and_detects_clashes() -> None:
    one, two = Router(topics=["a"]), Router(topics=["b"])

    @one.handler("x")
    def x(event: dict[str, Any]) -> None: ...

    @two.handler("y")
    def y(event: dict[str, Any]) -> None: ...

    one.include(two)
    assert {s.event_type for s in one.handlers()} == {"x", "y"}
    assert one.topics == ["a", "b"]
    with pytest.raises(ConfigError, match="two handlers"):
        one.include(two)


def test_literal_publishes_without_a_topic_are_found_before_the_first_event() -> None:
    from streamkit import Context
    from streamkit.handlers.lint import unmapped_publishes

    router = Router()

    @router.handler("order.created")
    async def on(data: dict[str, Any], ctx: Context) -> None:
        await ctx.publish("invoice.requested", data)  # mapped below
        await ctx.publish("receipt.requested", data)  # not mapped: would fail every time
        await ctx.publish("audit", data, topic="audit-log")  # explicit topic: fine

    found = unmapped_publishes(router.handlers(), {"invoice.requested": "invoices"}, None)
    assert [event_type for _, event_type in found] == ["receipt.requested"]
    assert unmapped_publishes(router.handlers(), {}, "catch-all-topic") == []


def test_a_typo_in_a_handler_option_names_the_function_and_the_valid_options() -> None:
    router = Router()
    with pytest.raises(ConfigError) as info:

        @router.handler("e", max_inflght=3)  # type: ignore[call-arg]
        def on_e(data: dict[str, Any]) -> None: ...

    message = str(info.value)
    assert "on_e" in message and "max_inflght" in message and "max_inflight" in message


def test_a_missing_annotation_says_so() -> None:
    router = Router()
    with pytest.raises(ConfigError, match="missing type annotation"):

        @router.handler("e")
        def on_e(data) -> None: ...  # type: ignore[no-untyped-def]

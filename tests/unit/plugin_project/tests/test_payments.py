import pytest

pytestmark = pytest.mark.streamkit(router="payments.handlers")


def test_sync_test_publishes_and_sees_the_receipt(streamkit_broker):
    streamkit_broker.publish("payment.authorized", {"payment_id": "p1", "cents": 5})
    assert streamkit_broker.published("receipt.requested") == [{"payment_id": "p1"}]
    [call] = streamkit_broker.calls("payment.authorized")
    assert (call.attempt, call.data, call.error) == (1, {"payment_id": "p1", "cents": 5}, None)


async def test_async_test_needs_no_async_plugin(streamkit_broker):
    await streamkit_broker.publish("payment.refunded", {"payment_id": "p2", "cents": 5})
    assert len(streamkit_broker.calls("payment.refunded")) == 1
    await streamkit_broker.publish("payment.unknown", {})  # on_unknown="skip"
    assert streamkit_broker.dead_letters == []


def test_the_retry_waits_for_its_delay_on_the_virtual_clock(streamkit_broker):
    streamkit_broker.publish("payment.authorized", {"payment_id": "flaky", "cents": 5})
    assert [c.attempt for c in streamkit_broker.calls()] == [1]
    streamkit_broker.advance(29)
    assert [c.attempt for c in streamkit_broker.calls()] == [1]
    streamkit_broker.advance(2)
    calls = streamkit_broker.calls()
    assert [c.attempt for c in calls] == [1, 2]
    assert calls[1].at - calls[0].at >= 30
    assert streamkit_broker.published("receipt.requested") == [{"payment_id": "flaky"}]


def test_exhausted_retries_end_in_the_dlq(streamkit_broker):
    streamkit_broker.publish("payment.authorized", {"payment_id": "p3", "cents": -1})
    streamkit_broker.advance(30)
    streamkit_broker.advance(30)
    assert [c.attempt for c in streamkit_broker.calls()] == [1, 2, 3]
    [dead] = streamkit_broker.dead_letters
    assert dead.header("streamkit-error-type") == "ValueError"


def test_a_failing_publish_is_retried_like_any_failure(streamkit_broker):
    streamkit_broker.fail_publishes(1, topic="receipts")
    streamkit_broker.publish("payment.authorized", {"payment_id": "p4", "cents": 5})
    assert streamkit_broker.published("receipt.requested") == []
    streamkit_broker.advance(30)
    assert streamkit_broker.published("receipt.requested") == [{"payment_id": "p4"}]
    assert [c.attempt for c in streamkit_broker.calls()] == [1, 2]

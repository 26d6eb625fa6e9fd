import random
from typing import Any

import pytest

from streamkit import ExponentialBackoff, FixedBackoff, Retry, RetryPolicy, TopicNames
from streamkit import envelope as env
from streamkit.errors import SchemaError
from streamkit.retry.failures import FailurePlanner
from streamkit.retry.topics import Tier, tier_map


def test_fixed_backoff() -> None:
    assert [FixedBackoff(2.5).delay(n) for n in (1, 2, 10)] == [2.5, 2.5, 2.5]
    with pytest.raises(ValueError, match=">= 0"):
        FixedBackoff(-1)


def test_exponential_backoff_grows_and_caps() -> None:
    b = ExponentialBackoff(base=0.5, factor=3, max_delay=10)
    assert [b.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.5, 4.5, 10, 10]
    assert b.delay(10_000) == 10  # no overflow on absurd attempt counts


def test_jitter_stays_within_its_band_and_below_the_cap() -> None:
    b = ExponentialBackoff(base=1, factor=2, max_delay=5, jitter=0.25, rng=random.Random(7))
    for n in range(1, 12):
        d = min(2 ** (n - 1), 5)
        samples = [b.delay(n) for _ in range(200)]
        assert all(d * 0.75 <= s <= d for s in samples)
        assert max(samples) - min(samples) > d * 0.1  # it does spread


@pytest.mark.parametrize(
    "kwargs", [{"factor": 0.5}, {"jitter": 1.5}, {"base": -1}, {"jitter": -0.1}]
)
def test_invalid_backoff(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="ExponentialBackoff"):
        ExponentialBackoff(**kwargs)


def test_policy_retryability_and_requested_delay() -> None:
    policy = RetryPolicy(max_attempts=3, backoff=FixedBackoff(1), non_retryable=(KeyError,))
    assert policy.is_retryable(ValueError())
    assert not policy.is_retryable(KeyError())
    assert not policy.is_retryable(SchemaError("bad"))
    assert policy.next_delay(1) == 1
    assert policy.next_delay(1, requested=7.5) == 7.5
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_topic_names_are_owned_by_the_group() -> None:
    names = TopicNames()
    assert names.retry("orders", "billing", 2) == "orders.billing.retry.2"
    assert names.dlq("orders", "billing") == "orders.billing.dlq"
    assert tier_map(["orders"], "billing", 2, names) == {
        "orders": Tier("orders", 0),
        "orders.billing.retry.1": Tier("orders", 1),
        "orders.billing.retry.2": Tier("orders", 2),
    }
    custom = TopicNames(retry_template="{group}-{topic}-r{n}", dlq_template="{group}-{topic}-dead")
    assert custom.all_for("o", "g", 1) == ["g-o-r1", "g-o-dead"]


class FakeMsg:
    def __init__(self, topic: str, headers: list[tuple[str, bytes]] | None = None) -> None:
        self._topic, self._headers = topic, headers

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 41

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)

    def headers(self) -> Any:
        return self._headers


def _raise(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_failure_plans_walk_the_tiers_then_the_dlq() -> None:
    planner = FailurePlanner("g", TopicNames(), tiers=2)
    policy = RetryPolicy(max_attempts=3, backoff=FixedBackoff(5))
    source = FakeMsg("orders", [("event_type", b"x"), ("user", b"u")])
    first = planner.plan(
        source, source.headers(), _raise(ValueError("boom")), policy, 1, Tier("orders", 0)
    )
    assert first.kind == "retry"
    assert first.topic == "orders.g.retry.1"
    assert first.delay == 5
    h = first.headers
    assert env.header_int(h, env.H_ATTEMPT) == 2
    assert env.header_str(h, env.H_ORIGINAL_TOPIC) == "orders"
    assert env.header_int(h, env.H_ORIGINAL_OFFSET) == 41
    assert env.header_int(h, env.H_ORIGINAL_PARTITION) == 2
    assert env.header_int(h, env.H_ORIGINAL_TIMESTAMP) == 1_700_000_000_000
    assert env.header_str(h, env.H_ERROR_TYPE) == "ValueError"
    assert env.header_str(h, env.H_ERROR_MESSAGE) == "boom"
    assert "ValueError: boom" in (env.header_str(h, env.H_ERROR_TRACEBACK) or "")
    not_before = env.header_int(h, env.H_NOT_BEFORE)
    failed_at = env.header_int(h, env.H_FAILED_AT)
    assert not_before is not None and failed_at is not None
    assert not_before - failed_at == 5000
    assert ("user", b"u") in h

    # The retry record fails again in tier 1: tier 2, original-* kept once, not piled up.
    tier1 = FakeMsg("orders.g.retry.1", h)
    second = planner.plan(
        tier1, tier1.headers(), _raise(Retry(delay=0.5)), policy, 2, Tier("orders", 1)
    )
    assert second.topic == "orders.g.retry.2"
    assert second.delay == 0.5
    assert sum(1 for k, _ in second.headers if k == env.H_ORIGINAL_TOPIC) == 1
    assert sum(1 for k, _ in second.headers if k == env.H_ATTEMPT) == 1
    assert env.header_str(second.headers, env.H_ORIGINAL_TOPIC) == "orders"

    last = planner.plan(
        FakeMsg("orders.g.retry.2", second.headers),
        FakeMsg("orders.g.retry.2", second.headers).headers(),
        _raise(ValueError()),
        policy,
        3,
        Tier("orders", 2),
    )
    assert last.kind == "dlq"
    assert last.topic == "orders.g.dlq"
    assert env.header_int(last.headers, env.H_ATTEMPT) == 3
    assert env.header_value(last.headers, env.H_NOT_BEFORE) is None


def test_bad_input_and_non_retryable_go_straight_to_the_dlq() -> None:
    planner = FailurePlanner("g", TopicNames(), tiers=2)
    msg = FakeMsg("orders")
    assert (
        planner.plan(msg, msg.headers(), SchemaError("x"), None, 1, Tier("orders", 0)).kind == "dlq"
    )
    policy = RetryPolicy(non_retryable=(KeyError,))
    assert (
        planner.plan(msg, msg.headers(), KeyError("k"), policy, 1, Tier("orders", 0)).kind == "dlq"
    )


def test_long_tracebacks_and_messages_are_truncated() -> None:
    planner = FailurePlanner("g", TopicNames(), tiers=1)
    plan = planner.plan(
        FakeMsg("o"), FakeMsg("o").headers(), _raise(ValueError("m" * 5000)), None, 1, Tier("o", 0)
    )
    assert len(env.header_value(plan.headers, env.H_ERROR_MESSAGE) or b"") == 1000
    assert len(env.header_value(plan.headers, env.H_ERROR_TRACEBACK) or b"") <= 4000

"""Unit checks behind the reliability fixes (issue 17); the fault suite proves them on Kafka."""

from __future__ import annotations

import math

import pytest
from pydantic import BaseModel, ValidationError

from streamkit import Retry
from streamkit import envelope as env
from streamkit.consumer.outcomes import H_VALUE_DROPPED, _Out
from streamkit.consumer.state import PartitionState
from streamkit.observability.http import HealthState
from streamkit.record import OutgoingRecord
from streamkit.retry.failures import error_message, failure_headers
from streamkit.retry.topics import Tier


class Card(BaseModel):
    number: int


def _validation_error() -> ValidationError:
    try:
        Card.model_validate({"number": "4111-1111-1111-1111"})
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


@pytest.mark.parametrize("delay", [math.nan, math.inf, -1, "5"])
def test_retry_rejects_a_delay_that_could_never_be_scheduled(delay: object) -> None:
    with pytest.raises(ValueError, match="Retry\\(delay=\\)"):
        Retry(delay=delay)  # type: ignore[arg-type]
    assert Retry(delay=0).delay == 0


class Msg:
    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)


def test_input_values_stay_out_of_failure_headers_unless_asked() -> None:
    exc = _validation_error()
    assert "4111" in str(exc)
    assert "4111" not in error_message(exc)
    safe = failure_headers(Msg(), [], group="g", exc=exc, attempt=1, not_before_ms=None, now_ms=0)
    assert all(b"4111" not in value for _, value in safe)
    full = failure_headers(
        Msg(), [], group="g", exc=exc, attempt=1, not_before_ms=None, now_ms=0, full=True
    )
    assert b"4111" in (env.header_value(full, env.H_ERROR_MESSAGE) or b"")


def test_a_too_large_dead_letter_sheds_its_traceback_then_its_value() -> None:
    headers = [
        (env.H_ERROR_MESSAGE, b"m" * 900),
        (env.H_ERROR_TRACEBACK, b"t" * 4000),
        (env.H_ORIGINAL_TOPIC, b"orders"),
    ]
    record = OutgoingRecord("dlq", b"v" * 1000, key=b"k", headers=headers, kind="dlq")
    out = _Out(Msg(), PartitionState("t", 0, Tier("t", 0)), record, ("e", "E"))  # type: ignore[arg-type]
    assert out.shrink() and record.value == b"v" * 1000  # first the headers
    assert env.header_value(record.headers, env.H_ERROR_TRACEBACK) is None
    assert len(env.header_value(record.headers, env.H_ERROR_MESSAGE) or b"") == 200
    assert out.shrink() and record.value is None and out.dropped  # then the value
    assert env.header_str(record.headers, H_VALUE_DROPPED) == "1000"
    assert env.header_str(record.headers, env.H_ORIGINAL_TOPIC) == "orders"  # still findable
    assert not out.shrink()  # nothing left: the caller backs off instead of looping


def test_a_retry_record_never_loses_its_value() -> None:
    record = OutgoingRecord("t.g.retry.1", b"v", key=None, headers=[], kind="retry")
    out = _Out(Msg(), PartitionState("t", 0, Tier("t", 0)), record, ("e", "E"))  # type: ignore[arg-type]
    assert not out.shrink() and record.value == b"v"


def test_healthz_fails_while_a_failure_publish_keeps_failing() -> None:
    now = [0.0]
    health = HealthState(stall_after=10, clock=lambda: now[0])
    health.beat()
    health.publish_problem(("t", 0, 5), "dlq publish to t.dlq failing: TOPIC_AUTHORIZATION_FAILED")
    now[0] = 5
    health.beat()
    assert health.healthz() == (True, "ok")
    now[0] = 11
    health.beat()
    ok, reason = health.healthz()
    assert not ok and "TOPIC_AUTHORIZATION_FAILED" in reason
    health.publish_problem(("t", 0, 5), None)
    assert health.healthz() == (True, "ok")

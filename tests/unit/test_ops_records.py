"""Dead-letter views, filters, replay headers and targets, and produce input parsing."""

from __future__ import annotations

import orjson
import pytest

from streamkit import TopicNames
from streamkit import envelope as env
from streamkit.envelope import encode_envelope
from streamkit.ops.errors import InvalidInputError, UnreplayableRecordError
from streamkit.ops.filters import RecordFilter
from streamkit.ops.produce import Outgoing, parse_data, parse_lines
from streamkit.ops.records import DeadLetter
from streamkit.ops.replay import default_group, default_target, replay_headers
from streamkit.ops.replay_plan import rewrite_headers

NOW = 1_700_000_000_000
FAILURE = [
    (env.H_ATTEMPT, b"3"),
    (env.H_GROUP, b"billing"),
    (env.H_ERROR_TYPE, b"TimeoutError"),
    (env.H_ERROR_MESSAGE, b"upstream timed out"),
    (env.H_ERROR_TRACEBACK, b"Traceback (most recent call last): ..."),
    (env.H_FAILED_AT, str(NOW).encode()),
    (env.H_NOT_BEFORE, str(NOW).encode()),
]
ORIGINAL = [
    (env.H_ORIGINAL_TOPIC, b"orders"),
    (env.H_ORIGINAL_PARTITION, b"2"),
    (env.H_ORIGINAL_OFFSET, b"41"),
    (env.H_ORIGINAL_TIMESTAMP, str(NOW - 5000).encode()),
]
USER = [(env.HEADER_EVENT_TYPE, b"order.created"), ("trace-id", b"abc"), ("raw", b"\xffz")]


def dead_letter(
    headers: env.Headers | None = None,
    *,
    key: bytes | None = b"order-1",
    value: bytes | None = None,
    ts: int = NOW,
) -> DeadLetter:
    if value is None:
        value = encode_envelope("order.created", {"order_id": "1"})
    if headers is None:
        headers = USER + ORIGINAL + FAILURE
    return DeadLetter("orders.billing.dlq", 1, 7, ts, key, value, headers)


def test_the_view_reads_the_streamkit_headers() -> None:
    record = dead_letter()
    assert record.position == "orders.billing.dlq/1/7"
    assert record.event_type() == "order.created"
    assert record.error_type() == "TimeoutError"
    assert record.attempt() == 3
    summary = record.summary()
    assert summary["key"] == "order-1"
    assert summary["original_topic"] == "orders"
    assert summary["group"] == "billing"
    assert summary["timestamp"] == "2023-11-14T22:13:20.000Z"


def test_event_type_falls_back_to_the_envelope_and_bare_payloads_have_none() -> None:
    assert dead_letter([]).event_type() == "order.created"
    assert dead_letter([], value=b"not json").event_type() is None
    assert dead_letter([], value=b"[1, 2]").event_type() is None


def test_details_pretty_print_json_and_keep_other_payloads_as_text() -> None:
    details = dead_letter().details()
    assert details["payload"]["data"] == {"order_id": "1"}
    assert details["payload_is_json"] is True
    assert ["raw", "\\xffz"] in details["headers"]
    assert details["traceback"].startswith("Traceback")
    raw = dead_letter(value=b"\xffnot json").details()
    assert raw["payload"] == "\\xffnot json"
    assert raw["payload_is_json"] is False


def test_an_empty_filter_matches_everything() -> None:
    flt = RecordFilter.build()
    assert flt.label == ""
    assert not flt.active
    assert flt.matches(dead_letter())


@pytest.mark.parametrize(
    ("kwargs", "matches"),
    [
        ({"event_types": ["order.created"]}, True),
        ({"event_types": ["order.paid"]}, False),
        ({"event_types": ["order.paid", "order.created"]}, True),
        ({"error_types": ["TimeoutError"]}, True),
        ({"error_types": ["KeyError"]}, False),
        ({"keys": ["order-1"]}, True),
        ({"keys": ["order-2"]}, False),
        ({"since": "10s"}, True),  # the record is 0 s old
        ({"until": "10s"}, False),
        ({"since": "2023-11-14T22:13:20Z"}, True),  # since is inclusive
        ({"until": "2023-11-14T22:13:20Z"}, False),  # until is exclusive
        ({"until": "2023-11-14T22:13:20.001Z"}, True),
    ],
)
def test_each_filter(kwargs: dict[str, object], matches: bool) -> None:
    flt = RecordFilter.build(now=NOW, **kwargs)  # type: ignore[arg-type]
    assert flt.active
    assert flt.matches(dead_letter()) is matches


def test_a_keyless_record_never_matches_a_key_filter() -> None:
    assert not RecordFilter.build(keys=["order-1"]).matches(dead_letter(key=None))


def test_the_label_is_what_was_typed_so_a_relative_time_keeps_its_replay_group() -> None:
    a = RecordFilter.build(event_types=["b", "a"], since="2h", now=NOW)
    b = RecordFilter.build(event_types=["a", "b"], since="2h", now=NOW + 60_000)
    assert a.label == b.label == "--event-type=a --event-type=b --since=2h"
    assert default_group("d", a) == default_group("d", b)
    assert default_group("d", a) != default_group("d", RecordFilter.build(event_types=["a"]))
    assert default_group("d", RecordFilter()) == "streamkit-replay.d"
    assert default_group("d", a).startswith("streamkit-replay.d.")


def test_replay_headers_drop_failure_headers_and_keep_the_rest_in_order() -> None:
    headers = replay_headers(dead_letter().headers, "orders.billing.dlq/1/7", NOW)
    assert headers == [
        *USER,
        *ORIGINAL,
        (env.H_REPLAYED_FROM, b"orders.billing.dlq/1/7"),
        (env.H_REPLAYED_AT, str(NOW).encode()),
    ]


def test_a_second_replay_replaces_the_replay_headers() -> None:
    once = replay_headers(dead_letter().headers, "d/1/7", NOW)
    twice = replay_headers(once + FAILURE, "d/0/99", NOW + 1)
    assert env.header_value(twice, env.H_REPLAYED_FROM) == b"d/0/99"
    assert sum(1 for k, _ in twice if k == env.H_REPLAYED_FROM) == 1
    assert sum(1 for k, _ in twice if k == env.H_ORIGINAL_TOPIC) == 1


def test_the_one_pass_rewrite_reads_the_origin_the_last_repeat_winning() -> None:
    # A record failed, was replayed and failed again under another group: its headers
    # repeat, and the last of each names where it goes back to.
    headers = [*dead_letter().headers, (env.H_GROUP, b"shipping"), (env.H_ORIGINAL_PARTITION, b"0")]
    kept, origin = rewrite_headers(headers, b"d/1/7", b"1")
    assert origin == [b"orders", b"shipping", b"0"]
    assert kept == replay_headers(headers, "d/1/7", 1)
    assert rewrite_headers(USER, b"d/1/7", b"1")[1] == [None, None, None]


def test_the_default_target_is_the_groups_first_retry_tier() -> None:
    assert default_target(dead_letter(), TopicNames()) == "orders.billing.retry.1"
    custom = TopicNames(retry_template="retry-{n}.{group}.{topic}")
    assert default_target(dead_letter(), custom) == "retry-1.billing.orders"


def test_a_record_without_streamkit_headers_has_no_default_target() -> None:
    with pytest.raises(
        UnreplayableRecordError, match="streamkit-original-topic or streamkit-group"
    ):
        default_target(dead_letter(USER), TopicNames())
    with pytest.raises(UnreplayableRecordError, match=r"no streamkit-group header.*--to TOPIC"):
        default_target(dead_letter(USER + ORIGINAL), TopicNames())


def test_produce_lines() -> None:
    lines = [
        '{"event_type": "a", "data": {"x": 1}, "key": "k1"}\n',
        "\n",
        '{"data": {"n": [1, 2]}}\n',
        '{"event_type": "c", "data": {}}',
    ]
    assert parse_lines(lines, "f.jsonl", default_type="b", default_key="dk") == [
        Outgoing("a", {"x": 1}, "k1"),
        Outgoing("b", {"n": [1, 2]}, "dk"),
        Outgoing("c", {}, "dk"),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{nope", "f.jsonl line 2: invalid JSON"),
        ("[1, 2]", "f.jsonl line 2: expected a JSON object"),
        ('{"data": 1}', "f.jsonl line 2: no event_type"),
        ('{"event_type": "a", "key": 5}', "f.jsonl line 2: key must be a string"),
        ('{"event_type": "a", "data": [1]}', "f.jsonl line 2: data must be a JSON object"),
    ],
)
def test_bad_produce_lines_name_the_line(line: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_lines(['{"event_type": "a", "data": {}}', line], "f.jsonl")


def test_produce_data() -> None:
    assert parse_data('{"a": [1, "x"]}') == {"a": [1, "x"]}
    with pytest.raises(InvalidInputError, match="--data is not valid JSON"):
        parse_data("{'a': 1}")
    assert orjson.loads(encode_envelope("t", parse_data('{"n": 3}')))["data"] == {"n": 3}
    with pytest.raises(InvalidInputError, match="data must be a JSON object, got list"):
        parse_data("[1, 2]")

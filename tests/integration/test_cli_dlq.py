"""`streamkit dlq list|show|stats|purge` on a real broker, including bad input."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streamkit.ops.timeparse import iso
from tests.integration.cli_helpers import (
    DeadLetterSpec,
    json_of,
    now_ms,
    one_error_line,
    positions,
    produce_dead_letters,
    run_cli,
)
from tests.integration.helpers import end_offsets, free_port

pytestmark = pytest.mark.kafka
N = 12
MINUTE = 60_000


def _specs(source: str, now: int) -> list[DeadLetterSpec]:
    """12 dead letters over 2 partitions: i -> partition i % 2, offset i // 2.

    Event type alternates (created/paid), TimeoutError for i % 3 == 0, key k{i % 4},
    dead-lettered 3 h ago (i < 4), 90 min ago (i < 8) or 10 min ago.
    """
    ages = [180 * MINUTE] * 4 + [90 * MINUTE] * 4 + [10 * MINUTE] * 4
    return [
        DeadLetterSpec(
            i,
            source,
            "billing",
            event_type="order.created" if i % 2 == 0 else "order.paid",
            error_type="TimeoutError" if i % 3 == 0 else "ValueError",
            key=f"k{i % 4}".encode(),
            timestamp_ms=now - ages[i],
            partition=i % 2,
        )
        for i in range(N)
    ]


def _at(*indexes: int) -> set[tuple[int, int]]:
    return {(i % 2, i // 2) for i in indexes}


@pytest.fixture
def dlq(kafka_bootstrap: str, make_topic: Callable[..., str]) -> tuple[str, int]:
    topic = make_topic("orders.billing.dlq", partitions=2)
    now = now_ms()
    produce_dead_letters(kafka_bootstrap, topic, _specs("orders", now))
    return topic, now


def test_each_filter_lists_exactly_the_expected_records(
    kafka_bootstrap: str, dlq: tuple[str, int]
) -> None:
    topic, now = dlq
    every = range(N)
    cases: list[tuple[list[str], set[tuple[int, int]]]] = [
        ([], _at(*every)),
        (["--event-type", "order.paid"], _at(*(i for i in every if i % 2))),
        (["--error-type", "TimeoutError"], _at(0, 3, 6, 9)),
        (["--error-type", "TimeoutError", "--error-type", "ValueError"], _at(*every)),
        (["--key", "k1"], _at(1, 5, 9)),
        (["--since", "2h"], _at(*range(4, N))),
        (["--since", iso(now - 120 * MINUTE)], _at(*range(4, N))),
        (["--until", "1h"], _at(*range(8))),
        (["--since", "2h", "--until", "1h"], _at(4, 5, 6, 7)),
        (["--partition", "1"], _at(*(i for i in every if i % 2))),
        (["--event-type", "order.created", "--error-type", "TimeoutError"], _at(0, 6)),
        (["--key", "nope"], set()),
    ]
    for args, expected in cases:
        out = json_of(run_cli("dlq", "list", topic, "-b", kafka_bootstrap, "--json", *args))
        assert positions(out["records"]) == expected, args
        assert out["matched"] == len(expected), args
        assert out["scanned"] == (6 if "--partition" in args else N), args


def test_list_fields_limit_and_table(kafka_bootstrap: str, dlq: tuple[str, int]) -> None:
    topic, _ = dlq
    out = json_of(run_cli("dlq", "list", topic, "-b", kafka_bootstrap, "--json", "--limit", "3"))
    assert (out["matched"], len(out["records"])) == (N, 3)
    first = out["records"][0]
    assert first["key"] == "k0"
    assert first["event_type"] == "order.created"
    assert first["error_type"] == "TimeoutError"
    assert first["error_message"] == "failure number 0"
    assert first["attempt"] == 3
    assert (first["original_topic"], first["group"]) == ("orders", "billing")
    table = run_cli("dlq", "list", topic, "-b", kafka_bootstrap, "--key", "k1")
    assert table.exit_code == 0, table.stderr
    assert "partition/offset" in table.stdout
    assert "failure number 5" in table.stdout
    assert "3 of 12 records matched" in table.stdout


def test_show_prints_every_header_the_traceback_and_the_payload(
    kafka_bootstrap: str, dlq: tuple[str, int]
) -> None:
    topic, _ = dlq
    args = ("dlq", "show", topic, "-b", kafka_bootstrap, "-p", "1", "-o", "2")  # i = 5
    details = json_of(run_cli(*args, "--json"))
    assert (details["partition"], details["offset"], details["key"]) == (1, 2, "k1")
    headers = dict(details["headers"])
    assert headers["trace-id"] == "t5"
    assert headers["streamkit-error-type"] == "ValueError"
    assert details["traceback"].startswith("Traceback (most recent call last)")
    assert details["payload"]["data"] == {"i": 5}
    assert details["payload"]["event_id"] == "event-5"
    shown = run_cli(*args)
    assert shown.exit_code == 0, shown.stderr
    for text in ("streamkit-original-topic", "t5", "traceback", '"i": 5', "event-5"):
        assert text in shown.stdout, text


def test_show_a_record_that_is_not_there(kafka_bootstrap: str, dlq: tuple[str, int]) -> None:
    topic, _ = dlq
    missing = run_cli("dlq", "show", topic, "-b", kafka_bootstrap, "-p", "0", "-o", "99")
    assert missing.exit_code == 2
    assert "no record at" in one_error_line(missing)
    assert "holds offsets 0..5" in missing.stderr
    no_partition = run_cli("dlq", "show", topic, "-b", kafka_bootstrap, "-p", "7", "-o", "0")
    assert no_partition.exit_code == 2
    assert "has no partition 7" in one_error_line(no_partition)


def test_stats_count_by_type_and_give_the_oldest_age(
    kafka_bootstrap: str, dlq: tuple[str, int]
) -> None:
    topic, _ = dlq
    out = json_of(run_cli("dlq", "stats", topic, "-b", kafka_bootstrap, "--json"))
    assert out["total"] == N
    assert out["by_event_type"] == {"order.created": 6, "order.paid": 6}
    assert out["by_error_type"] == {"ValueError": 8, "TimeoutError": 4}
    assert out["by_original_topic"] == {"orders": 12}
    assert 180 * 60 - 60 < out["oldest_age_s"] < 180 * 60 + 60
    recent = json_of(
        run_cli("dlq", "stats", topic, "-b", kafka_bootstrap, "--json", "--since", "2h")
    )
    assert recent["total"] == 8
    assert 90 * 60 - 60 < recent["oldest_age_s"] < 90 * 60 + 60
    table = run_cli("dlq", "stats", topic, "-b", kafka_bootstrap)
    assert "by error type" in table.stdout
    assert "12 records (0 replayed); oldest" in table.stdout


def test_purge_before_a_time_deletes_exactly_the_older_records(
    kafka_bootstrap: str, dlq: tuple[str, int]
) -> None:
    topic, _ = dlq
    out = json_of(
        run_cli("dlq", "purge", topic, "-b", kafka_bootstrap, "--before", "1h", "--yes", "--json")
    )
    assert out["deleted"] == 8
    assert {r["partition"]: r["low_watermark"] for r in out["partitions"]} == {0: 4, 1: 4}
    left = json_of(run_cli("dlq", "list", topic, "-b", kafka_bootstrap, "--json"))
    assert positions(left["records"]) == _at(8, 9, 10, 11)
    again = json_of(
        run_cli("dlq", "purge", topic, "-b", kafka_bootstrap, "--before", "1h", "--yes", "--json")
    )
    assert again["deleted"] == 0


def test_purge_asks_first_and_all_deletes_everything(
    kafka_bootstrap: str, dlq: tuple[str, int]
) -> None:
    topic, _ = dlq
    declined = run_cli("dlq", "purge", topic, "-b", kafka_bootstrap, "--all", input="n\n")
    assert declined.exit_code == 1
    assert "Delete 12 records from" in declined.stderr
    assert json_of(run_cli("dlq", "stats", topic, "-b", kafka_bootstrap, "--json"))["total"] == N
    accepted = run_cli("dlq", "purge", topic, "-b", kafka_bootstrap, "--all", input="y\n")
    assert accepted.exit_code == 0, accepted.stderr
    assert "deleted 12 records" in accepted.stdout
    assert json_of(run_cli("dlq", "stats", topic, "-b", kafka_bootstrap, "--json"))["total"] == 0
    assert end_offsets(kafka_bootstrap, topic, 2) == {0: 6, 1: 6}  # deleted, not rewritten
    neither = run_cli("dlq", "purge", topic, "-b", kafka_bootstrap)
    assert neither.exit_code == 2
    assert "exactly one of --before TIME and --all" in neither.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["dlq", "list"],
        ["dlq", "stats"],
        ["dlq", "show", "-p", "0", "-o", "0"],
        ["dlq", "purge", "--all", "--yes"],
    ],
)
def test_unknown_topic_and_no_broker_give_one_line(
    kafka_bootstrap: str, unique: str, command: list[str]
) -> None:
    head, tail = command[:2], command[2:]
    unknown = run_cli(*head, f"no-such-dlq-{unique}", *tail, "-b", kafka_bootstrap)
    assert unknown.exit_code == 2
    assert one_error_line(unknown) == f"streamkit: error: unknown topic: no-such-dlq-{unique}"
    nobody = f"127.0.0.1:{free_port()}"
    down = run_cli(
        *head, "some-dlq", *tail, "-b", nobody, env_vars={"STREAMKIT_CONNECT_TIMEOUT": "1"}
    )
    assert down.exit_code == 3
    assert f"no Kafka broker at {nobody} within 1s (connection refused)" in one_error_line(down)


def test_limit_shows_the_oldest_records_whichever_partition_holds_them(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("spread.dlq", partitions=2)
    now = now_ms()
    # Partition 0 holds 50 recent records, partition 1 the 3 oldest: a limit of 3 must
    # find them whatever partition is read first.
    specs = [
        DeadLetterSpec(i, "orders", "billing", partition=0, timestamp_ms=now - i) for i in range(50)
    ]
    specs += [DeadLetterSpec(100 + i, "orders", "billing", partition=1,
                             timestamp_ms=now - 600 * MINUTE + i) for i in range(3)]  # fmt: skip
    produce_dead_letters(kafka_bootstrap, topic, specs)
    out = json_of(run_cli("dlq", "list", topic, "--limit", "3", "--json", "-b", kafka_bootstrap))
    assert out["matched"] == 53
    assert [(r["partition"], r["offset"]) for r in out["records"]] == [(1, 0), (1, 1), (1, 2)]

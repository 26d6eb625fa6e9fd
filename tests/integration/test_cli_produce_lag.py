"""`streamkit produce` and `streamkit lag` on a real broker, including bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from streamkit import envelope as env
from tests.integration.cli_helpers import (
    DeadLetterSpec,
    json_of,
    one_error_line,
    produce_dead_letters,
    run_cli,
)
from tests.integration.helpers import end_offsets, free_port, produce_events, read_all

pytestmark = pytest.mark.kafka


def test_produce_one_event_as_an_envelope(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("orders", partitions=1)
    result = run_cli(
        "produce", topic, "-b", kafka_bootstrap,
        "--event-type", "order.created", "--data", '{"order_id": "o1", "amount_cents": 5}',
        "--key", "o1",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"produced 1 event to {topic}"
    [msg] = read_all(kafka_bootstrap, topic, 1)
    assert msg.key() == b"o1"
    assert env.header_str(msg.headers(), env.HEADER_EVENT_TYPE) == "order.created"
    body = orjson.loads(msg.value())
    assert body["event_type"] == "order.created"
    assert body["data"] == {"order_id": "o1", "amount_cents": 5}
    assert env.header_str(msg.headers(), env.HEADER_EVENT_ID) == body["event_id"]


def test_produce_in_bulk_from_a_file_and_from_stdin(
    kafka_bootstrap: str, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic("bulk", partitions=3)
    lines = [
        orjson.dumps({"event_type": "a", "data": {"n": i}, "key": f"k{i}"}).decode()
        for i in range(200)
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines[:150]) + "\n\n")
    from_file = json_of(
        run_cli("produce", topic, "-b", kafka_bootstrap, "-f", str(events), "--json")
    )
    assert from_file == {"topic": topic, "produced": 150}
    stdin = "\n".join(['{"data": {"n": -1}}', *lines[150:]])
    from_stdin = run_cli("produce", topic, "-b", kafka_bootstrap, "-f", "-", "-e", "b", input=stdin)
    assert from_stdin.exit_code == 0, from_stdin.stderr
    assert from_stdin.stdout.strip() == f"produced 51 events to {topic}"
    msgs = read_all(kafka_bootstrap, topic, 201)
    assert len(msgs) == 201
    bodies = [orjson.loads(m.value()) for m in msgs]
    assert sorted(b["data"]["n"] for b in bodies) == list(range(-1, 200))
    assert {b["event_type"] for b in bodies if b["data"]["n"] == -1} == {"b"}
    assert all(m.key() == f"k{orjson.loads(m.value())['data']['n']}".encode() for m in msgs
               if orjson.loads(m.value())["data"]["n"] >= 0)  # fmt: skip


def test_produce_bad_input_sends_nothing_and_says_why_in_one_line(
    kafka_bootstrap: str, make_topic: Callable[..., str], tmp_path: Path, unique: str
) -> None:
    topic = make_topic("bad", partitions=1)
    base = ("produce", topic, "-b", kafka_bootstrap)
    bad_data = run_cli(*base, "-e", "a", "--data", "{'single': 'quotes'}")
    assert bad_data.exit_code == 2
    assert "--data is not valid JSON" in one_error_line(bad_data)
    events = tmp_path / "events.jsonl"
    events.write_text('{"event_type": "a", "data": {}}\n{"event_type": "a", "data": \n')
    bad_line = run_cli(*base, "--file", str(events))
    assert bad_line.exit_code == 2
    assert f"{events} line 2: invalid JSON" in one_error_line(bad_line)
    no_type = run_cli(*base, "-f", "-", input='{"data": 1}\n')
    assert "stdin line 1: no event_type" in one_error_line(no_type)
    assert end_offsets(kafka_bootstrap, topic, 1) == {0: 0}  # nothing at all was sent
    unknown = run_cli("produce", f"nope-{unique}", "-b", kafka_bootstrap, "-e", "a", "-d", "{}")
    assert unknown.exit_code == 2
    assert one_error_line(unknown) == f"streamkit: error: unknown topic: nope-{unique}"
    missing = run_cli(*base, "--data", "1")
    assert missing.exit_code == 2
    assert "give --event-type and --data, or --file" in missing.stderr
    nobody = f"127.0.0.1:{free_port()}"
    down = run_cli(
        "produce", topic, "-b", nobody, "-e", "a", "-d", "{}",
        env_vars={"STREAMKIT_CONNECT_TIMEOUT": "1"},
    )  # fmt: skip
    assert down.exit_code == 3
    assert "no Kafka broker at 127.0.0.1:" in one_error_line(down)


MODULE = "tests.integration.services.recorder"  # order.created takes Order(order_id: str)


def test_produce_checks_data_before_sending(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("checked", partitions=1)
    base = ("produce", topic, "-b", kafka_bootstrap)
    for data, kind in (("[1,2]", "list"), ("3", "int"), ('"x"', "string"), ("null", "null")):
        bad = run_cli(*base, "-e", "order.created", "-d", data)
        assert bad.exit_code == 2
        assert one_error_line(bad).endswith(f"--data: data must be a JSON object, got {kind}")
    lines = (
        '{"event_type": "order.created", "data": {"order_id": "1", "amount_cents": 1}}\n'
        '{"event_type": "x"}\n'
    )
    no_data = run_cli(*base, "-f", "-", input=lines)
    assert "stdin line 2: data must be a JSON object, got null" in one_error_line(no_data)

    wrong = run_cli(*base, "-m", MODULE, "-e", "order.created", "-d", '{"order_id": 5}')
    assert wrong.exit_code == 2
    line = one_error_line(wrong)
    assert "event 1 (order.created): does not match" in line and "order_id" in line
    unknown = run_cli(*base, "--module", MODULE, "-e", "order.typo", "-d", "{}")
    assert "event 1 (order.typo): " + MODULE + " has no handler for it" in one_error_line(unknown)
    assert "order.created" in unknown.stderr  # the types it does handle
    assert end_offsets(kafka_bootstrap, topic, 1) == {0: 0}  # nothing was sent

    good = run_cli(
        *base, "-m", MODULE, "-e", "order.created", "-d", '{"order_id": "o1", "amount_cents": 5}'
    )
    assert good.exit_code == 0, good.stderr
    assert end_offsets(kafka_bootstrap, topic, 1) == {0: 1}


def _commit(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        consumer.commit(offsets=tps, asynchronous=False)
    finally:
        consumer.close()


def test_lag_per_partition_total_and_max_lag_exit_code(
    kafka_bootstrap: str, make_topic: Callable[..., str], unique: str
) -> None:
    topic = make_topic("lagged", partitions=3)
    other = make_topic("other", partitions=1)
    produce_dead_letters(
        kafka_bootstrap, topic, [DeadLetterSpec(i, "s", "g", partition=i % 3) for i in range(90)]
    )
    produce_events(kafka_bootstrap, other, [("e", {"i": i}, None) for i in range(10)])
    ends = end_offsets(kafka_bootstrap, topic, 3)
    assert ends == {0: 30, 1: 30, 2: 30}
    group = f"g-{unique}"
    _commit(kafka_bootstrap, group, {(topic, 0): ends[0] - 7, (topic, 1): ends[1]})

    out = json_of(run_cli("lag", "-g", group, "-t", topic, "-b", kafka_bootstrap, "--json"))
    rows = {r["partition"]: r for r in out["partitions"]}
    assert rows[0] == {"topic": topic, "partition": 0, "committed": ends[0] - 7, "end": ends[0],
                       "lag": 7}  # fmt: skip
    assert rows[1]["lag"] == 0
    assert rows[2]["committed"] is None
    assert rows[2]["lag"] == ends[2]  # never committed: every stored record is behind
    assert out["total"] == 7 + ends[2]
    assert out["exceeded"] is False

    # Without --topic: what the group committed, only.
    committed_only = json_of(run_cli("lag", "-g", group, "-b", kafka_bootstrap, "--json"))
    assert [(r["topic"], r["partition"]) for r in committed_only["partitions"]] == [
        (topic, 0),
        (topic, 1),
    ]
    assert committed_only["total"] == 7

    over = run_cli("lag", "-g", group, "-t", topic, "-b", kafka_bootstrap, "--max-lag", "36")
    assert over.exit_code == 1
    assert "total" in over.stdout
    assert over.stderr.strip() == "streamkit: lag 37 is above --max-lag 36"
    within = run_cli("lag", "-g", group, "-b", kafka_bootstrap, "--max-lag", "7")
    assert within.exit_code == 0, within.stderr
    exceeded = run_cli("lag", "-g", group, "-b", kafka_bootstrap, "--max-lag", "6")
    assert exceeded.exit_code == 1
    both = json_of(run_cli("lag", "-g", group, "-t", topic, "-t", other, "-b", kafka_bootstrap,
                           "--json"))  # fmt: skip
    assert both["total"] == 7 + ends[2] + 10


def test_lag_bad_input(kafka_bootstrap: str, unique: str) -> None:
    nothing = run_cli("lag", "-g", f"nobody-{unique}", "-b", kafka_bootstrap)
    assert nothing.exit_code == 2
    assert "has no committed offsets" in one_error_line(nothing)
    unknown = run_cli("lag", "-g", "g", "-t", f"nope-{unique}", "-b", kafka_bootstrap)
    assert unknown.exit_code == 2
    assert one_error_line(unknown) == f"streamkit: error: unknown topic: nope-{unique}"
    bad_setting = run_cli("lag", "-g", "g", "-b", kafka_bootstrap, "-X", "no.such.property=1")
    assert bad_setting.exit_code == 2
    assert "invalid client settings" in one_error_line(bad_setting)

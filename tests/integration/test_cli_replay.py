"""`streamkit replay` on a real broker: the same group handles its dead letters again,
other groups see nothing twice, filters, dry run, resume after SIGINT, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamkit import envelope as env
from tests.integration.cli_helpers import (
    DeadLetterSpec,
    create_topic,
    json_of,
    now_ms,
    one_error_line,
    produce_dead_letters,
    replayed_from,
    run_cli,
)
from tests.integration.helpers import (
    STREAMKIT,
    Service,
    committed,
    end_offsets,
    free_port,
    produce_events,
    read_all,
    read_lines,
    wait_until,
)

pytestmark = pytest.mark.kafka
MODULE = "tests.integration.services.fixable"
MINUTE = 60_000


@pytest.mark.timeout(120)
def test_replay_makes_the_same_group_handle_all_500_and_no_other_group_twice(
    kafka_bootstrap: str, make_topic: Callable[..., str], unique: str, tmp_path: Path
) -> None:
    source = make_topic("fixable", partitions=3)
    failing, healthy = f"ga-{unique}", f"gb-{unique}"
    for group in (failing, healthy):
        ensured = run_cli(
            "topics", "ensure", MODULE, "-g", group, "-t", source, "-b", kafka_bootstrap
        )
        assert ensured.exit_code == 0, ensured.stderr
    produce_events(
        kafka_bootstrap, source, [("fixable.event", {"id": i}, f"k{i % 25}") for i in range(500)]
    )
    broken = tmp_path / "broken"
    broken.touch()
    out_a, out_b = tmp_path / "a.txt", tmp_path / "b.txt"
    a = Service(MODULE, bootstrap=kafka_bootstrap, group=failing, topics=[source], out=out_a,
                env={"STREAMKIT_TEST_BROKEN": str(broken)})  # fmt: skip
    b = Service(MODULE, bootstrap=kafka_bootstrap, group=healthy, topics=[source], out=out_b)
    dlq, tier = f"{source}.{failing}.dlq", f"{source}.{failing}.retry.1"
    try:
        a.wait_ready()
        b.wait_ready()
        wait_until(lambda: sum(end_offsets(kafka_bootstrap, dlq, 3).values()) == 500, 60, "500 DLQ")
        wait_until(lambda: len(read_lines(out_b)) == 500, 60, "the healthy group handled 500")
        assert read_lines(out_a) == []
        broken.unlink()  # the fix is deployed

        report = json_of(run_cli("replay", dlq, "-b", kafka_bootstrap, "--json"))
        assert (report["replayed"], report["skipped"], report["failed"]) == (500, 0, 0)
        assert report["targets"] == {tier: 500}
        wait_until(lambda: len(read_lines(out_a)) >= 500, 60, "the failing group handled 500")
        # The healthy group has committed the end of the source: it saw all it ever will.
        source_ends = end_offsets(kafka_bootstrap, source, 3)
        wait_until(
            lambda: committed(kafka_bootstrap, healthy, source, 3) == source_ends, 30, "commits"
        )
        again = json_of(run_cli("replay", dlq, "-b", kafka_bootstrap, "--json"))
        assert again["replayed"] == 0  # resumes after its last commit: nothing is left
    finally:
        codes = (a.stop(), b.stop())
    assert codes == (0, 0)
    handled_a = read_lines(out_a)
    assert sorted(int(line[0]) for line in handled_a) == list(range(500))
    assert {(line[1], line[2]) for line in handled_a} == {(tier, "1")}  # attempt count reset
    handled_b = read_lines(out_b)
    assert Counter(int(line[0]) for line in handled_b) == Counter(range(500))
    assert {line[1] for line in handled_b} == {source}
    # Each replayed event went to the tier partition numbered like its source partition.
    assert {line[0]: line[3] for line in handled_a} == {line[0]: line[3] for line in handled_b}
    assert sum(end_offsets(kafka_bootstrap, dlq, 3).values()) == 500  # none failed again


def _specs(source: str, now: int, n: int = 20, partitions: int = 2) -> list[DeadLetterSpec]:
    """i -> partition i % partitions; types alternate; TimeoutError for i % 3 == 0;
    key k{i % 4}; dead-lettered 3 h ago for the first half, 10 min ago for the rest."""
    return [
        DeadLetterSpec(
            i,
            source,
            "billing",
            event_type="order.created" if i % 2 == 0 else "order.paid",
            error_type="TimeoutError" if i % 3 == 0 else "ValueError",
            key=f"k{i % 4}".encode(),
            timestamp_ms=now - (180 if i < n // 2 else 10) * MINUTE,
            partition=i % partitions,
            original_partition=(i + 1) % partitions,
        )
        for i in range(n)
    ]


@pytest.fixture
def dlq(kafka_bootstrap: str, make_topic: Callable[..., str], admin: Any, unique: str) -> Any:
    """A DLQ of 20 synthetic dead letters of group ``billing`` and its retry tier 1."""
    source = f"orders-{unique}"
    topic = make_topic("orders.billing.dlq", partitions=2)
    tier = create_topic(admin, f"{source}.billing.retry.1", 2)
    produce_dead_letters(kafka_bootstrap, topic, _specs(source, now_ms()))
    return topic, tier


def _position(topic: str, i: int, partitions: int = 2) -> str:
    return f"{topic}/{i % partitions}/{i // partitions}"


def test_dry_run_shows_what_would_go_and_changes_nothing(
    kafka_bootstrap: str, dlq: tuple[str, str]
) -> None:
    topic, tier = dlq
    out = json_of(run_cli("replay", topic, "-b", kafka_bootstrap, "--dry-run", "--json"))
    assert (out["dry_run"], out["replayed"], out["skipped"]) == (True, 20, 0)
    assert out["targets"] == {tier: 20}
    assert len(out["sample"]) == 10
    assert {s["target"] for s in out["sample"]} == {tier}
    table = run_cli(
        "replay", topic, "-b", kafka_bootstrap, "--dry-run", "--event-type", "order.paid"
    )
    assert table.exit_code == 0, table.stderr
    assert "would replay" in table.stdout
    assert "skipped by filter" in table.stdout
    assert end_offsets(kafka_bootstrap, tier, 2) == {0: 0, 1: 0}  # nothing published
    group = f"streamkit-replay.{topic}"
    assert all(o < 0 for o in committed(kafka_bootstrap, group, topic, 2).values())  # none


def test_each_filter_replays_exactly_the_expected_records(
    kafka_bootstrap: str, dlq: tuple[str, str], admin: Any, unique: str
) -> None:
    topic, _ = dlq
    every = range(20)
    cases: list[tuple[list[str], list[int]]] = [
        (["--event-type", "order.paid"], [i for i in every if i % 2]),
        (["--error-type", "TimeoutError"], [i for i in every if i % 3 == 0]),
        (["--key", "k2", "--key", "k3"], [i for i in every if i % 4 in (2, 3)]),
        (["--since", "1h"], list(range(10, 20))),
        (["--until", "1h"], list(range(10))),
        (["--partition", "0"], [i for i in every if i % 2 == 0]),
        (["--event-type", "order.created", "--error-type", "ValueError", "--since", "1h"],
         [10, 14, 16]),
    ]  # fmt: skip
    for n, (args, expected) in enumerate(cases):  # --again: each case sees all 20 records
        dry = json_of(
            run_cli("replay", topic, "-b", kafka_bootstrap, "--dry-run", "--again", "--json", *args)
        )
        assert (dry["replayed"], dry["skipped"]) == (len(expected), dry["scanned"] - len(expected))
        target = create_topic(admin, f"replay-to-{n}-{unique}", 1)
        real = json_of(
            run_cli(
                "replay", topic, "-b", kafka_bootstrap, "--to", target, "--again", "--json", *args
            )
        )
        assert real["replayed"] == len(expected), args
        got = replayed_from(read_all(kafka_bootstrap, target, len(expected)))
        assert sorted(got) == sorted(_position(topic, i) for i in expected), args


def test_replayed_records_keep_key_value_and_headers_and_lose_failure_headers(
    kafka_bootstrap: str, dlq: tuple[str, str]
) -> None:
    topic, tier = dlq
    started = now_ms()
    report = json_of(run_cli("replay", topic, "-b", kafka_bootstrap, "--json"))
    assert report["replayed"] == 20
    originals = {
        f"{topic}/{m.partition()}/{m.offset()}": m for m in read_all(kafka_bootstrap, topic, 20)
    }
    replayed = read_all(kafka_bootstrap, tier, 20)
    assert sorted(replayed_from(replayed)) == sorted(originals)
    for msg in replayed:
        headers = msg.headers()
        source = originals[env.header_str(headers, env.H_REPLAYED_FROM) or ""]
        assert (msg.key(), msg.value()) == (source.key(), source.value())  # byte for byte
        assert msg.partition() == env.header_int(headers, env.H_ORIGINAL_PARTITION)
        kept = [(k, v) for k, v in source.headers() if k not in env.FAILURE_HEADERS]
        assert headers[: len(kept)] == kept  # user and original-* headers, in order
        assert [k for k, _ in headers[len(kept) :]] == [env.H_REPLAYED_FROM, env.H_REPLAYED_AT]
        assert started <= (env.header_int(headers, env.H_REPLAYED_AT) or 0) <= now_ms()
    assert committed(kafka_bootstrap, f"streamkit-replay.{topic}", topic, 2) == {0: 10, 1: 10}


def test_limit_and_rerun_resume_without_duplicates(
    kafka_bootstrap: str, dlq: tuple[str, str]
) -> None:
    topic, tier = dlq
    counts = [
        json_of(run_cli("replay", topic, "-b", kafka_bootstrap, "--limit", "7", "--json"))[
            "replayed"
        ]
        for _ in range(4)
    ]
    assert counts == [7, 7, 6, 0]
    got = replayed_from(read_all(kafka_bootstrap, tier, 20))
    assert sorted(got) == sorted(_position(topic, i) for i in range(20))


def test_a_record_replayed_once_is_skipped_by_a_replay_with_another_filter(
    kafka_bootstrap: str, dlq: tuple[str, str]
) -> None:
    topic, tier = dlq
    b = ["-b", kafka_bootstrap]
    listed = json_of(run_cli("dlq", "list", topic, "--json", *b))["records"]
    assert [r["replayed"] for r in listed] == [None] * 20
    timeouts = [i for i in range(20) if i % 3 == 0]

    first = json_of(run_cli("replay", topic, "--error-type", "TimeoutError", "--json", *b))
    assert (first["replayed"], first["already_replayed"]) == (len(timeouts), 0)
    stats = json_of(run_cli("dlq", "stats", topic, "--json", *b))
    assert (stats["replayed"], stats["not_replayed"]) == (7, 13)
    shown = run_cli("dlq", "show", topic, "-p", "0", "-o", "0", *b)  # record 0: a TimeoutError
    assert "replayed: 20" in shown.stdout and f" to {tier}" in shown.stdout
    unreplayed = run_cli("dlq", "show", topic, "-p", "1", "-o", "0", *b)  # record 1
    assert "replayed: no" in unreplayed.stdout

    rest = json_of(run_cli("replay", topic, "--json", *b))  # no filter: another replay group
    assert (rest["replayed"], rest["already_replayed"]) == (13, 7)
    got = replayed_from(read_all(kafka_bootstrap, tier, 20))
    assert sorted(got) == sorted(_position(topic, i) for i in range(20))  # each exactly once
    listed = json_of(run_cli("dlq", "list", topic, "--json", *b))["records"]
    assert all(r["replayed"]["to"] == tier for r in listed)
    table = run_cli("dlq", "list", topic, *b)
    assert "replayed" in table.stdout and " - " not in table.stdout.split("\n", 3)[-1]

    forced = json_of(run_cli("replay", topic, "--event-type", "order.paid", "--again",
                             "--json", *b))  # fmt: skip
    assert (forced["replayed"], forced["already_replayed"]) == (10, 0)
    assert len(read_all(kafka_bootstrap, tier, 30)) == 30
    nothing = json_of(run_cli("replay", topic, "--dry-run", "--again", "--json", *b))
    assert nothing["replayed"] == 20  # --again: from the oldest record, progress ignored


def _slow_replay(bootstrap: str, topic: str, tier: str, after: int) -> subprocess.Popen[bytes]:
    """`streamkit replay` at 200 records/s in a subprocess, once ``after`` records arrived."""
    proc = subprocess.Popen(
        [STREAMKIT, "replay", topic, "-b", bootstrap, "--rate", "200", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: sum(end_offsets(bootstrap, tier, 2).values()) >= after, 30, "replays")
    except BaseException:
        proc.kill()
        proc.communicate(timeout=10)
        raise
    return proc


def _replay_state(bootstrap: str, topic: str, tier: str) -> tuple[int, int]:
    """(records in the target, records the replay group committed)."""
    done = committed(bootstrap, f"streamkit-replay.{topic}", topic, 2)
    return sum(end_offsets(bootstrap, tier, 2).values()), sum(max(o, 0) for o in done.values())


@pytest.mark.timeout(90)
def test_a_replay_stopped_by_sigint_resumes_and_loses_nothing(
    kafka_bootstrap: str, make_topic: Callable[..., str], admin: Any, unique: str
) -> None:
    source = f"orders-{unique}"
    topic = make_topic("orders.billing.dlq", partitions=2)
    tier = create_topic(admin, f"{source}.billing.retry.1", 2)
    produce_dead_letters(kafka_bootstrap, topic, _specs(source, now_ms(), n=400))
    proc = _slow_replay(kafka_bootstrap, topic, tier, after=250)  # past its first commit
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert b"interrupted; run the same command again to resume" in stderr
    first = orjson.loads(stdout)
    assert first["interrupted"] is True
    assert 250 <= first["replayed"] < 400
    # A clean stop commits everything acknowledged: the rerun sends nothing twice.
    assert _replay_state(kafka_bootstrap, topic, tier) == (first["replayed"], first["replayed"])

    rest = json_of(run_cli("replay", topic, "-b", kafka_bootstrap, "--json"))
    assert rest["replayed"] == 400 - first["replayed"]
    got = replayed_from(read_all(kafka_bootstrap, tier, 400))
    assert sorted(got) == sorted(_position(topic, i) for i in range(400))  # none lost, none twice
    stats = json_of(run_cli("dlq", "stats", topic, "-b", kafka_bootstrap, "--json"))
    assert (stats["replayed"], stats["not_replayed"]) == (400, 0)  # the ledger is complete


@pytest.mark.timeout(90)
def test_a_killed_replay_repeats_only_what_followed_its_last_commit(
    kafka_bootstrap: str, make_topic: Callable[..., str], admin: Any, unique: str
) -> None:
    source = f"orders-{unique}"
    topic = make_topic("orders.billing.dlq", partitions=2)
    tier = create_topic(admin, f"{source}.billing.retry.1", 2)
    produce_dead_letters(kafka_bootstrap, topic, _specs(source, now_ms(), n=400))
    proc = _slow_replay(kafka_bootstrap, topic, tier, after=250)
    proc.kill()
    proc.communicate(timeout=30)
    sent, done = _replay_state(kafka_bootstrap, topic, tier)
    assert 0 < done <= sent < 400
    assert sent - done <= 200  # at most the batch in flight (one second at --rate 200)

    rest = json_of(run_cli("replay", topic, "-b", kafka_bootstrap, "--json"))
    # What followed the last commit goes again, unless the kill came after its ledger note.
    assert rest["replayed"] + rest["already_replayed"] == 400 - done
    got = replayed_from(read_all(kafka_bootstrap, tier, sent + rest["replayed"]))
    assert len(got) == sent + rest["replayed"]
    assert set(got) == {_position(topic, i) for i in range(400)}  # none lost
    stats = json_of(run_cli("dlq", "stats", topic, "-b", kafka_bootstrap, "--json"))
    assert (stats["replayed"], stats["not_replayed"]) == (400, 0)


def test_bad_input_gives_one_clear_line(
    kafka_bootstrap: str, make_topic: Callable[..., str], admin: Any, unique: str
) -> None:
    source = f"orders-{unique}"
    topic = make_topic("mixed.dlq", partitions=1)
    tier = create_topic(admin, f"{source}.billing.retry.1", 1)
    specs = [DeadLetterSpec(i, source, "billing", partition=0) for i in range(4)]
    specs[2] = DeadLetterSpec(2, source, "billing", partition=0, streamkit_headers=False)
    produce_dead_letters(kafka_bootstrap, topic, specs)

    for _ in range(2):  # the second run resumes at the bad record: nothing sent twice
        bare = run_cli("replay", topic, "-b", kafka_bootstrap)
        assert bare.exit_code == 2
        assert one_error_line(bare).startswith(
            f"streamkit: error: record {topic}/0/2 has no streamkit-original-topic or "
            "streamkit-group header"
        )
        assert "--to TOPIC" in bare.stderr
        assert end_offsets(kafka_bootstrap, tier, 1) == {0: 2}
    assert committed(kafka_bootstrap, f"streamkit-replay.{topic}", topic, 1) == {0: 2}
    explicit = json_of(run_cli("replay", topic, "-b", kafka_bootstrap, "--to", tier, "--json"))
    assert explicit["replayed"] == 2  # the rest, the bare record included
    assert sorted(replayed_from(read_all(kafka_bootstrap, tier, 4))) == [
        f"{topic}/0/{i}" for i in range(4)
    ]

    no_tier = make_topic("no-tier.dlq", partitions=1)
    produce_dead_letters(kafka_bootstrap, no_tier, [DeadLetterSpec(0, source, "no-retries")])
    missing = run_cli("replay", no_tier, "-b", kafka_bootstrap)
    assert missing.exit_code == 2
    assert f"unknown topic: {source}.no-retries.retry.1 (replay target of" in one_error_line(
        missing
    )

    for args in ([f"nope-{unique}"], [topic, "--to", f"nope-{unique}"]):
        unknown = run_cli("replay", *args, "-b", kafka_bootstrap)
        assert unknown.exit_code == 2
        assert one_error_line(unknown) == f"streamkit: error: unknown topic: nope-{unique}"
    nobody = f"127.0.0.1:{free_port()}"
    down = run_cli("replay", topic, "-b", nobody, env_vars={"STREAMKIT_CONNECT_TIMEOUT": "1"})
    assert down.exit_code == 3
    assert "no Kafka broker at 127.0.0.1:" in one_error_line(down)


@pytest.mark.timeout(180)
def test_a_record_the_broker_refuses_is_not_counted_replayed_and_the_next_run_sends_it(
    kafka_bootstrap: str, make_topic: Callable[..., str], unique: str
) -> None:
    # Only failures are reported to a replay (delivery.report.only.error): a refused
    # record must still fail, stop its partition's progress and stay out of the ledger,
    # so that a later replay sends it, and nothing else twice.
    dlq = make_topic("refused.dlq", partitions=1)
    small = make_topic("small", partitions=1, config={"max.message.bytes": "4000"})
    roomy = make_topic("roomy", partitions=1)
    big = [("padding", os.urandom(20_000))]  # refused by `small`, even compressed
    specs = [
        DeadLetterSpec(i, f"src-{unique}", "g", partition=0, user_headers=big if i == 4 else [])
        for i in range(10)
    ]
    produce_dead_letters(kafka_bootstrap, dlq, specs)

    first = run_cli("replay", dlq, "--to", small, "-b", kafka_bootstrap, "--json")
    assert first.exit_code != 0 and "RecordTooLargeError" in first.stderr, first.stderr
    report = orjson.loads(first.stdout)
    assert report["failed"] >= 1 and report["replayed"] + report["failed"] == 10
    progress = committed(kafka_bootstrap, f"streamkit-replay.{dlq}", dlq, 1)[0]
    assert progress <= 4  # never past the refused record (-1001: nothing committed)
    landed = replayed_from(read_all(kafka_bootstrap, small, report["replayed"]))
    assert len(landed) == report["replayed"] and _position(dlq, 4, 1) not in landed

    second = json_of(run_cli("replay", dlq, "--to", roomy, "-b", kafka_bootstrap, "--json"))
    assert second["failed"] == 0 and second["replayed"] == report["failed"]
    again = replayed_from(read_all(kafka_bootstrap, roomy, second["replayed"]))
    assert _position(dlq, 4, 1) in again
    assert sorted(landed + again) == sorted(_position(dlq, i, 1) for i in range(10))


@pytest.mark.timeout(120)
def test_a_dead_letter_with_a_header_name_that_is_not_utf8_stops_the_replay_clearly(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    # Its headers cannot be touched (confluent-kafka leaves a NULL name: see read_headers):
    # one clear line, the records before it replayed and committed, the process alive.
    from tests.faults.rawproduce import produce as raw_produce

    dlq = make_topic("badname.dlq", partitions=1)
    target = make_topic("badname-target", partitions=1)
    good = [("event_type", b"order.created")]
    raw_produce(kafka_bootstrap, dlq, 0, [
        (b"k0", b"{}", [(k.encode(), v) for k, v in good]),
        (b"k1", b"{}", [(k.encode(), v) for k, v in good]),
        (b"k2", b"{}", [(b"\xff\xfe", b"v")]),
    ])  # fmt: skip
    result = run_cli("replay", dlq, "-b", kafka_bootstrap, "--to", target)
    assert result.exit_code == 2, result.stderr
    assert f"{dlq}/0/2 has a header name that is not UTF-8" in one_error_line(result)
    assert end_offsets(kafka_bootstrap, target, 1) == {0: 2}
    assert committed(kafka_bootstrap, f"streamkit-replay.{dlq}", dlq, 1) == {0: 2}

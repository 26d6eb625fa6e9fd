"""`streamkit topics create|ensure|list|describe` against the real broker."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.cli_helpers import json_of, one_error_line, run_cli
from tests.integration.helpers import produce_events

pytestmark = pytest.mark.kafka
MODULE = "tests.integration.services.recorder"


def test_create_then_list_and_describe(
    kafka_bootstrap: str, make_topic: Callable[..., str], unique: str
) -> None:
    b = ["-b", kafka_bootstrap]
    name = f"payments-{unique}"  # make_topic's cleanup removes every topic with `unique`
    created = run_cli("topics", "create", name, "--partitions", "3",
                      "-c", "retention.ms=3600000", "--json", *b)  # fmt: skip
    assert json_of(created) == {"name": name, "partitions": 3, "created": True}
    produce_events(kafka_bootstrap, name, [("payment.authorized", {"n": i}, "k") for i in range(5)])

    listed = json_of(run_cli("topics", "list", "--json", *b))["topics"]
    assert {"name": name, "partitions": 3, "replication_factor": 1} in listed
    assert not any(t["name"].startswith("__") for t in listed)

    info = json_of(run_cli("topics", "describe", name, "--json", *b))
    assert [p["partition"] for p in info["partitions"]] == [0, 1, 2]
    assert sum(p["end_offset"] for p in info["partitions"]) == 5  # one key: one partition
    assert sorted(p["records"] for p in info["partitions"]) == [0, 0, 5]
    assert info["configs"] == {"retention.ms": "3600000"}
    table = run_cli("topics", "describe", name, *b)
    assert table.exit_code == 0 and "retention.ms" in table.stdout and "end offset" in table.stdout

    again = run_cli("topics", "create", name, "-p", "3", *b)
    assert again.exit_code == 2
    assert one_error_line(again).endswith(
        f"topic {name} exists already (--if-not-exists accepts that)"
    )
    ok = run_cli("topics", "create", name, "-p", "3", "--if-not-exists", "--json", *b)
    assert json_of(ok)["created"] is False


def test_create_rejects_bad_input_in_one_line(kafka_bootstrap: str, unique: str) -> None:
    bad = run_cli(
        "topics", "create", f"x-{unique}", "-p", "1", "-c", "nonsense", "-b", kafka_bootstrap
    )
    assert bad.exit_code == 2 and "expected KEY=VALUE, got 'nonsense'" in bad.stderr
    unknown = run_cli("topics", "describe", f"nope-{unique}", "-b", kafka_bootstrap)
    assert unknown.exit_code == 2
    assert one_error_line(unknown) == f"streamkit: error: unknown topic: nope-{unique}"


def test_ensure_creates_a_missing_source_and_its_tiers_with_its_count(
    kafka_bootstrap: str, make_topic: Callable[..., str], unique: str
) -> None:
    source, group = f"orders-{unique}", f"g-{unique}"
    args = ["topics", "ensure", MODULE, "-g", group, "-t", source, "-b", kafka_bootstrap]
    refused = run_cli(*args)
    assert refused.exit_code == 2
    line = one_error_line(refused)
    assert f"missing topics: {source}" in line and "--partitions N" in line
    assert "topics ensure" not in line  # the hint no longer points back at itself

    rows = json_of(run_cli(*args, "--partitions", "4", "--json"))["topics"]
    names = [r["name"] for r in rows]
    assert names[0] == source and f"{source}.{group}.dlq" in names
    assert f"{source}.{group}.retry.1" in names
    assert all(r["partitions"] == 4 and r["created"] for r in rows)
    described = json_of(run_cli("topics", "describe", f"{source}.{group}.dlq", "--json",
                                "-b", kafka_bootstrap))  # fmt: skip
    assert len(described["partitions"]) == 4

    rerun = json_of(run_cli(*args, "--partitions", "9", "--json"))["topics"]
    assert not any(r["created"] for r in rerun) and all(r["partitions"] == 4 for r in rerun)


def test_ensure_follows_an_existing_source(
    kafka_bootstrap: str, make_topic: Callable[..., str], unique: str
) -> None:
    source = make_topic("src", partitions=2)
    out = run_cli(
        "topics", "ensure", MODULE, "-g", f"g-{unique}", "-t", source, "-b", kafka_bootstrap
    )
    assert out.exit_code == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"exists   {source}"
    assert f"created  {source}.g-{unique}.dlq" in lines

"""`streamkit deploy keda`: the ScaledObject from a router, through the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
import yaml

from streamkit.ops.keda import to_yaml
from tests import k8s_schemas as ks
from tests.integration.cli_helpers import json_of, one_error_line, run_cli

EXAMPLE = "examples.orders.handlers"


def _scaled_object(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run_cli("deploy", "keda", *args, env_vars=env)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("# streamkit deploy keda")  # a comment, still YAML
    doc: dict[str, Any] = yaml.safe_load(result.stdout)
    try:
        schema = ks.crd_schemas()[("keda.sh/v1alpha1", "ScaledObject")]
    except ks.ToolMissing:
        return doc  # test_k8s.py reports the missing Go; the rest still checks
    jsonschema.validate(doc, schema)
    return doc


def test_lag_threshold_is_rate_times_catch_up_and_knobs_land() -> None:
    doc = _scaled_object(EXAMPLE, "-g", "orders", "--max-replicas", "6", "--rate", "250",
                         "--catch-up", "8", "--min-replicas", "0", "--kind", "StatefulSet",
                         "--name", "orders-eu", "--auth", "kafka-trigger-auth")  # fmt: skip
    spec = doc["spec"]
    assert doc["metadata"]["name"] == "orders-eu"
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet",
                                      "name": "orders-eu"}  # fmt: skip
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 6)
    (trigger,) = spec["triggers"]
    assert trigger["metadata"]["lagThreshold"] == "2000"
    assert trigger["metadata"]["topic"] == "orders"
    assert trigger["authenticationRef"] == {"name": "kafka-trigger-auth"}
    as_json = run_cli("deploy", "keda", EXAMPLE, "-g", "orders", "--max-replicas", "6",
                      "--rate", "250", "--catch-up", "8", "--min-replicas", "0", "--kind",
                      "StatefulSet", "--name", "orders-eu", "--auth", "kafka-trigger-auth",
                      "--json")  # fmt: skip
    assert json_of(as_json) == doc


def test_group_and_topics_from_the_environment() -> None:
    env = {"STREAMKIT_GROUP_ID": "billing", "STREAMKIT_TOPICS": "orders,refunds"}
    doc = _scaled_object(EXAMPLE, "--max-replicas", "3", env=env)
    triggers = doc["spec"]["triggers"]
    assert [t["metadata"]["topic"] for t in triggers] == ["orders", "refunds"]
    assert {t["metadata"]["consumerGroup"] for t in triggers} == {"billing"}
    assert len({t["name"] for t in triggers}) == 2, "trigger names are unique"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ([EXAMPLE, "--max-replicas", "3"], "no consumer group: pass --group"),
        (["nosuch.module", "-g", "g", "--max-replicas", "3"], "nosuch"),
        ([EXAMPLE, "-g", "g", "--max-replicas", "0"], "'--max-replicas'"),
        ([EXAMPLE, "-g", "g", "--rate", "0", "--max-replicas", "1"], "'--rate'"),
    ],
)
def test_bad_input_is_one_line(args: list[str], error: str) -> None:
    result = run_cli("deploy", "keda", *args, env_vars={"STREAMKIT_GROUP_ID": ""})
    assert result.exit_code == 2
    if "--" in error:
        assert error in result.stderr  # click's own usage error
    else:
        assert error in one_error_line(result)


@pytest.mark.parametrize(
    "value", ["true", "No", "0", "1.5", "", "a: b", "#x", "- y", "null", "x'y\"z", "é", "@at"]
)
def test_yaml_emitter_round_trips(value: str) -> None:
    data = {"k": value, "n": 3, "b": False, "l": [{"a": value, "m": {"x": [1]}}], "e": {}}
    assert yaml.safe_load(to_yaml(data)) == data


@pytest.mark.kafka
def test_max_replicas_is_the_partition_count_read_from_the_broker(
    kafka_bootstrap: str, make_topic: Callable[..., str], unique: str
) -> None:
    small, large = make_topic("src-a", partitions=2), make_topic("src-b", partitions=5)
    group = f"g-{unique}"
    doc = _scaled_object("tests.integration.services.recorder", "-g", group, "-t", small,
                         "-t", large, "-b", kafka_bootstrap)  # fmt: skip
    # Members beyond the largest source's partition count would own nothing.
    assert doc["spec"]["maxReplicaCount"] == 5
    topics = [t["metadata"]["topic"] for t in doc["spec"]["triggers"]]
    assert topics == [small, large], "one trigger per source topic, no retry tier"
    missing = run_cli("deploy", "keda", "tests.integration.services.recorder", "-g", group,
                      "-t", f"nope-{unique}", "-b", kafka_bootstrap)  # fmt: skip
    assert missing.exit_code == 2
    assert one_error_line(missing) == f"streamkit: error: unknown topic: nope-{unique}"

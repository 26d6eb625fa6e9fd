"""Group membership settings: static member ids, the KIP-848 protocol, fenced errors."""

from __future__ import annotations

import confluent_kafka
import pytest

from streamkit import Router
from streamkit.config import Settings
from streamkit.consumer.startup import check_consumer_conf
from streamkit.errors import ConfigError
from streamkit.membership import fatal_reason, fenced_error


def _router() -> Router:
    router = Router(topics=["t"])

    @router.handler("e")
    def on_e(data: dict[str, object]) -> None: ...

    return router


def test_classic_is_range_with_a_fast_heartbeat_and_no_instance_id() -> None:
    conf = Settings().consumer_settings("g")
    assert conf["partition.assignment.strategy"] == "range"
    assert conf["heartbeat.interval.ms"] == 1000
    assert "group.instance.id" not in conf and "group.protocol" not in conf


def test_instance_id_from_the_environment_is_group_instance_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMKIT_INSTANCE_ID", "orders-2")
    assert Settings().consumer_settings("g")["group.instance.id"] == "orders-2"
    assert "group.instance.id" not in Settings().producer_settings()


@pytest.mark.parametrize(
    "settings",
    [Settings(group_protocol="consumer"), Settings(kafka={"group.protocol": "consumer"})],
    ids=["--group-protocol", "-X group.protocol"],
)
def test_consumer_protocol_leaves_out_what_librdkafka_refuses(settings: Settings) -> None:
    conf = settings.consumer_settings("g")
    assert conf["group.protocol"] == "consumer"
    assert conf["group.remote.assignor"] == "range"
    for name in ("partition.assignment.strategy", "session.timeout.ms", "heartbeat.interval.ms"):
        assert name not in conf
    check_consumer_conf(conf, _router(), exactly_once=False)
    # librdkafka accepts it (it refuses the classic-only properties at construction).
    confluent_kafka.Consumer({**conf, "bootstrap.servers": "127.0.0.1:1"}).close()


def test_a_classic_only_property_with_the_consumer_protocol_is_one_clear_error() -> None:
    conf = Settings(group_protocol="consumer", kafka={"session.timeout.ms": "6000"})
    with pytest.raises(ConfigError, match=r"session\.timeout\.ms cannot be set with --group-pro"):
        check_consumer_conf(conf.consumer_settings("g"), _router(), exactly_once=False)


def test_exactly_once_refuses_the_incremental_consumer_protocol() -> None:
    conf = Settings(group_protocol="consumer").consumer_settings("g")
    with pytest.raises(ConfigError, match="exactly-once needs eager rebalances"):
        check_consumer_conf(conf, _router(), exactly_once=True)


def test_fenced_error_is_one_line_naming_group_and_instance() -> None:
    text = (
        "Fatal error: Broker: Static consumer fenced by other consumer with same "
        "group.instance.id: Fatal consumer error: Broker: Static consumer fenced by other "
        "consumer with same group.instance.id"
    )
    reason = fatal_reason(text)
    assert reason == "Static consumer fenced by other consumer with same group.instance.id"
    conf = Settings(instance_id="pod-0").consumer_settings("billing")
    message = str(fenced_error(reason, conf))
    assert "\n" not in message
    assert message.startswith("consumer fenced, group billing, instance id 'pod-0': Static")
    assert str(fenced_error("boom", {"group.id": "g"})) == "consumer stopped by a fatal error: boom"

import pytest

from streamkit.config import Settings, redact


def test_env_lists_and_maps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMKIT_TOPICS", "a, b,,c")
    monkeypatch.setenv("STREAMKIT_KAFKA", "sasl.password=s3cret,session.timeout.ms=6000")
    monkeypatch.setenv("STREAMKIT_PUBLISH_TOPICS", '{"invoice.requested": "invoices"}')
    s = Settings()
    assert s.topics == ["a", "b", "c"]
    assert s.publish_topics == {"invoice.requested": "invoices"}
    consumer = s.consumer_settings("g")
    assert consumer["enable.auto.commit"] is False
    assert consumer["enable.auto.offset.store"] is False
    assert consumer["session.timeout.ms"] == "6000"
    assert "session.timeout.ms" not in s.producer_settings()
    assert s.producer_settings()["sasl.password"] == "s3cret"
    assert redact(consumer)["sasl.password"] == "***"


def test_passthrough_cannot_turn_off_manual_offset_storage() -> None:
    s = Settings(kafka={"enable.auto.commit": "true", "enable.auto.offset.store": "true"})
    consumer = s.consumer_settings("g")
    assert consumer["enable.auto.commit"] is False
    assert consumer["enable.auto.offset.store"] is False


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Settings(batch_size=0)
    with pytest.raises(ValueError, match="k=v"):
        Settings(kafka="novalue")  # type: ignore[arg-type]

"""The public API is curated: exactly these names, each one importable and documented."""

import streamkit

EXPECTED = {
    # handlers
    "Context", "Event", "Middleware", "Router", "configure", "handler",
    # retries
    "ExponentialBackoff", "FixedBackoff", "Retry", "RetryPolicy", "Skip", "TopicNames",
    # running
    "Settings", "Worker",
    # producing
    "Delivery", "DeliveryResult", "Producer",
    # errors
    "BrokerUnavailableError", "ConfigError", "DecodeError", "DeliveryFailedError",
    "DeliveryTimeoutError", "MissingTopicsError", "PermanentError", "ProducerError",
    "RecordTooLargeError", "SchemaError", "StreamkitError", "UnknownEventType",
    "UnknownTopicError", "TransientDependencyError",
    "__version__",
}  # fmt: skip


def test_all_is_exactly_the_curated_api() -> None:
    assert set(streamkit.__all__) == EXPECTED
    assert len(streamkit.__all__) == len(EXPECTED)  # no duplicates


def test_every_public_name_exists_and_has_a_docstring() -> None:
    for name in streamkit.__all__:
        obj = getattr(streamkit, name)
        if name != "__version__":
            assert (obj.__doc__ or "").strip(), name


def test_bare_decorator_uses_the_default_router() -> None:
    from typing import Any

    from streamkit.handlers import default_router

    @streamkit.handler("public.api.check")
    def on_check(data: dict[str, Any]) -> None: ...

    try:
        assert default_router.get("public.api.check") is not None
    finally:
        default_router._handlers.pop("public.api.check")  # leave the global router clean

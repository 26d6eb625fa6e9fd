"""FastStream with its confluent-kafka backend (``faststream.confluent``)."""

from __future__ import annotations

from typing import Any

from bench.contenders.common import Unavailable


def run(spec: dict[str, Any]) -> dict[str, Any]:
    try:
        from faststream.confluent import KafkaBroker, KafkaResponse
    except ImportError as exc:
        raise Unavailable(f"faststream[confluent]: {exc}") from None
    from bench.contenders.faststream_common import run_with

    return run_with(KafkaBroker, spec, KafkaResponse)

import asyncio
import json
import logging
from typing import Any

import pytest
import structlog

from streamkit import Context, Router
from streamkit.observability.logging import LogContext, configure_logging
from streamkit.testing import TestBroker


def test_json_logs_carry_the_event_coordinates(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "INFO")
    router = Router(topics=["orders"], middleware=[LogContext()])
    log = structlog.get_logger("service")

    @router.handler("order.created")
    async def on_order(data: dict[str, Any], ctx: Context) -> None:
        log.info("handling order", order_id=data["id"])

    async def scenario() -> None:
        async with TestBroker(router) as broker:
            await broker.publish("order.created", {"id": "o1"}, key="k")

    asyncio.run(scenario())
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    record = next(line for line in lines if line["event"] == "handling order")
    assert record["topic"] == "orders"
    assert record["event_type"] == "order.created"
    assert record["offset"] == 0
    assert record["event_id"]
    assert record["level"] == "info"
    assert "timestamp" in record
    logging.getLogger().handlers.clear()
    structlog.reset_defaults()

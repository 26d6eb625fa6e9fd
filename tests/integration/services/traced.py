"""The second service of the tracing test: handles ``invoice.requested`` and logs it."""

from __future__ import annotations

from typing import Any

import structlog

from streamkit import Router

router = Router()
log = structlog.get_logger("invoices")


@router.handler("invoice.requested")
def on_invoice(data: dict[str, Any]) -> None:
    log.info("invoice requested", order_id=data["order_id"])  # carries trace_id/span_id

"""A slow async handler (10 ms per event), for backlog memory tests."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from streamkit import Router

router = Router()


class Tick(BaseModel):
    n: int


@router.handler("tick")
async def on_tick(tick: Tick) -> None:
    await asyncio.sleep(0.01)

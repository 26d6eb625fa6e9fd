"""Scenario 7's consumer group: K streamkit members, each in its own process."""

from __future__ import annotations

import time
from typing import Any

from bench.context import Bench
from bench.proc import Child, Outcome, read_int
from bench.timeline import Timeline, load


class Group:
    """K streamkit members in one consumer group, each in its own process."""

    def __init__(
        self,
        b: Bench,
        topic: str,
        mode: str,
        settings: dict[str, Any] | None = None,
        *,
        static: bool = False,
        group_config: dict[str, str] | None = None,
    ):
        self.b, self.topic, self.mode, self.settings = b, topic, mode, settings or {}
        self.static = static  # each member gets --instance-id <group>-m<slot>
        self.group = b.name("g")
        self.tier_topics = b.admin.ensure_tiers(topic, self.group, 2)
        if group_config:  # before any member joins: KIP-848 heartbeat/session of this group
            b.admin.set_group_config(self.group, group_config)
        self.members: list[Child] = []

    def add(self, slot: int | None = None) -> Child:
        """Start a member; ``slot`` reuses an earlier member's instance id (a restart)."""
        i = len(self.members)
        base = str(self.b.workdir / f"{self.group}-{i}")
        settings = dict(self.settings)
        if self.static:
            settings["instance_id"] = f"{self.group}-m{i if slot is None else slot}"
        spec = {
            "topic": self.topic,
            "group": self.group,
            "mode": self.mode,
            "progress": base + ".progress",
            "timeline": base,
            "ready": base + ".ready",
            "settings": settings,
            "journal": base + ".journal",
        }
        child = self.b.child("streamkit_worker", spec).start()
        self.members.append(child)
        return child

    def handled(self) -> int:
        return sum(read_int(m.spec["progress"]) for m in self.members)

    def wait_handled(self, total: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.handled() < total:
            if time.monotonic() > deadline or any(m.exited() for m in self.members):
                return False
            time.sleep(0.1)
        return True

    def stop(self) -> list[Outcome]:
        for m in self.members:
            m.terminate()
        outcomes = [m.wait(timeout=60) for m in self.members]
        self.b.admin.forget(self.group, self.tier_topics)
        return outcomes

    def timelines(self) -> list[Timeline]:
        return [load(m.spec["timeline"]) for m in self.members]

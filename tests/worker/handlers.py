"""Test handlers whose chunks a test can hold, fail or watch, and helpers to run and wait for jobs."""

from __future__ import annotations

import asyncio
import inspect
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hub.auth import Principal
from hub.events.broker import LocalBroker
from hub.models import Job, JobStatus, Role
from hub.resolvers.brands import create_brand, create_store
from hub.resolvers.members import enroll_member
from hub.settings import WorkerSettings
from hub.worker.handlers import Chunk, ItemFailure, JobContext, JobFailed, JSONCursor, Plan
from hub.worker.registry import Registry, default_registry
from hub.worker.runner import Runner
from tests.helpers import new_phone

FAST = WorkerSettings(poll_seconds=0.02, lease_seconds=5.0, stop_grace_seconds=2.0)


def unique_kind(name: str) -> str:
    """Each test its own kind, so no runner of another test claims its jobs."""
    return f"test.{name}.{secrets.token_hex(3)}"


@dataclass
class Steps:
    """Items ``0 .. n-1``, ``chunk`` at a time. Hooks let a test hold a chunk, fail items, or raise."""

    kind: str
    n: int = 9
    chunk: int = 3
    fail_items: frozenset[int] = frozenset()
    # Chunks of these attempts wait for ``gate`` before touching any item.
    hold_attempts: frozenset[int] = frozenset()
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    chunk_started: asyncio.Event = field(default_factory=asyncio.Event)
    raise_on: Callable[[JobContext, int], BaseException | None] | None = None
    delay: float = 0.0
    plans: int = 0
    processed: list[tuple[int, int, int]] = field(default_factory=list)  # (job, item, attempt)
    running: Counter[int] = field(default_factory=Counter)
    overlaps: int = 0

    async def plan(self, ctx: JobContext) -> Plan:
        self.plans += 1
        return Plan(total=self.n, cursor={"next": 0})

    async def run_chunk(self, ctx: JobContext, cursor: JSONCursor) -> Chunk:
        self.running[ctx.job_id] += 1
        if self.running[ctx.job_id] > 1:
            self.overlaps += 1
        try:
            self.chunk_started.set()
            if ctx.attempt in self.hold_attempts:
                await self.gate.wait()
            start = int(cursor["next"])
            if self.raise_on is not None and (error := self.raise_on(ctx, start)) is not None:
                raise error
            items = range(start, min(start + self.chunk, self.n))
            failed = []
            for item in items:
                ctx.ensure_lease()
                self.processed.append((ctx.job_id, item, ctx.attempt))
                if item in self.fail_items:
                    failed.append(ItemFailure(str(item), "BAD_ITEM", f"Item {item} is bad."))
                if self.delay:
                    await asyncio.sleep(self.delay)
            end = start + len(items)
            return Chunk(None if end >= self.n else {"next": end}, len(items) - len(failed), failed)
        finally:
            self.running[ctx.job_id] -= 1

    def items_of(self, job_id: int) -> list[int]:
        return [item for job, item, _ in self.processed if job == job_id]


def permanent_failure(message: str) -> Callable[[JobContext, int], BaseException | None]:
    return lambda ctx, start: JobFailed(message)


async def wait_until(check: Callable[[], bool | Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


async def wait_status(job_id: int, *statuses: JobStatus, timeout: float = 15.0) -> Job:
    async def reached() -> bool:
        return (await Job.get(id=job_id)).status in statuses

    await wait_until(reached, timeout)
    return await Job.get(id=job_id)


class Runners:
    """Runners started by a test, stopped at its end even when it fails."""

    def __init__(self, broker: LocalBroker) -> None:
        self.broker = broker
        self.started: list[Runner] = []

    async def start(
        self, *handlers: object, settings: WorkerSettings = FAST, runner_class: type[Runner] = Runner
    ) -> Runner:
        runner = runner_class(Registry(handlers), self.broker, settings, retry_base_seconds=0)  # type: ignore[arg-type]
        await runner.start()
        self.started.append(runner)
        return runner

    async def stop_all(self) -> None:
        await asyncio.gather(*(r.stop() for r in self.started))


EMBEDDED_KIND = "test.embedded"


def session_jobs() -> Registry:
    """The test app's registry: the hub's own, plus one kind that only its embedded runner claims."""
    registry = default_registry()
    registry.add(Steps(EMBEDDED_KIND))
    return registry


async def brand_with_members(count: int) -> int:
    """A new brand with one store and ``count`` enrolled members; returns the brand id."""
    brand = await create_brand(Principal(Role.PLATFORM), f"Jobs {secrets.token_hex(3)}")
    shop = await create_store(Principal(Role.BRAND, brand_id=brand.id), brand.id, "Shop", "S1")
    clerk = Principal(Role.STORE, brand_id=brand.id, store_id=shop.id)
    for _ in range(count):
        await enroll_member(clerk, new_phone())
    return brand.id

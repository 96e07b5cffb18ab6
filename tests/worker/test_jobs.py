"""Creating jobs: exactly once per idempotency claim, nothing written on a conflict."""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette

from hub.errors import DomainError, ErrorCode
from hub.ledger.idempotency import IdempotencyClaim, request_hash
from hub.models import Job, JobStatus
from hub.settings import WorkerSettings
from hub.worker import store
from hub.worker.process import start_embedded
from tests.helpers import World, pk
from tests.worker.handlers import unique_kind


def _claim(key: str, **request: object) -> IdempotencyClaim:
    return IdempotencyClaim("brand:1", key, request_hash("test.create", **request))


async def test_the_same_claim_and_request_return_the_same_job(world: World) -> None:
    kind = unique_kind("idem")
    first, created = await store.enqueue(
        kind, brand_id=pk(world.a.id), name="grant", params={"points": 5}, claim=_claim(kind, points=5)
    )
    again, created_again = await store.enqueue(
        kind, brand_id=pk(world.a.id), name="grant", params={"points": 5}, claim=_claim(kind, points=5)
    )
    assert created and not created_again and again.id == first.id
    assert await Job.filter(kind=kind).count() == 1


async def test_the_same_key_with_another_request_is_refused_and_nothing_is_written(world: World) -> None:
    kind = unique_kind("conflict")
    await store.enqueue(kind, brand_id=pk(world.a.id), params={"points": 5}, claim=_claim(kind, points=5))
    with pytest.raises(DomainError) as refused:
        await store.enqueue(kind, brand_id=pk(world.a.id), params={"points": 6}, claim=_claim(kind, points=6))
    assert refused.value.code is ErrorCode.IDEMPOTENCY_CONFLICT and refused.value.field == "idempotencyKey"
    assert [j.params for j in await Job.filter(kind=kind)] == [{"points": 5}]


async def test_concurrent_creations_with_one_key_make_one_job(world: World) -> None:
    kind = unique_kind("race")
    results = await asyncio.gather(
        *(store.enqueue(kind, brand_id=pk(world.a.id), claim=_claim(kind, n=1)) for _ in range(20))
    )
    assert len({job.id for job, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert await Job.filter(kind=kind).count() == 1


async def test_jobs_without_a_claim_are_always_new(world: World) -> None:
    kind = unique_kind("noclaim")
    a, _ = await store.enqueue(kind, brand_id=pk(world.a.id))
    b, _ = await store.enqueue(kind, brand_id=pk(world.a.id))
    assert a.id != b.id and a.status is b.status is JobStatus.QUEUED
    assert a.idempotency_key is None and a.run_after <= store.utcnow()


def test_worker_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_WORKER", "off")
    monkeypatch.setenv("HUB_WORKER_CONCURRENCY", "4")
    monkeypatch.setenv("HUB_WORKER_LEASE_SECONDS", "12.5")
    monkeypatch.setenv("HUB_SCHEDULES_OFF", "expire-lots, mature-pending")
    settings = WorkerSettings.from_env()
    assert not settings.embedded and settings.concurrency == 4 and settings.lease_seconds == 12.5
    assert not settings.schedule_enabled("expire-lots") and settings.schedule_enabled("rollups")
    assert not WorkerSettings(schedules_off=frozenset({"all"})).schedule_enabled("rollups")
    monkeypatch.setenv("HUB_WORKER", "sometimes")
    with pytest.raises(ValueError, match="HUB_WORKER must be on or off"):
        WorkerSettings.from_env()
    monkeypatch.delenv("HUB_WORKER")
    assert WorkerSettings.from_env().embedded


async def test_hub_worker_off_starts_no_embedded_runner(app: Starlette) -> None:
    from dataclasses import replace

    settings = app.state.services.settings
    off = replace(settings, worker=replace(settings.worker, embedded=False))
    assert await start_embedded(off, app.state.services.broker, app.state.worker.registry) is None

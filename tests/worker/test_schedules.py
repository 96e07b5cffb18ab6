"""Schedules: one job per period, however many runners tick at once; off by a setting."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette

from hub.models import Job, JobStatus
from hub.worker.registry import Registry
from hub.worker.runner import Runner
from hub.worker.schedules import Schedule
from tests.worker.handlers import FAST, Steps, unique_kind

T0 = datetime(2026, 11, 23, 14, 57, 54, tzinfo=UTC)


def _schedule(kind: str, **options: object) -> Schedule:
    return Schedule(
        f"s-{secrets.token_hex(4)}", kind, timedelta(minutes=10), params={"batch": 500}, **options
    )  # type: ignore[arg-type]


def _runners(app: Starlette, schedule: Schedule, count: int, **settings: object) -> list[Runner]:
    registry = Registry([Steps(schedule.kind)], [schedule])
    broker = app.state.services.broker
    return [Runner(registry, broker, replace(FAST, **settings)) for _ in range(count)]  # type: ignore[arg-type]


async def _jobs_of(schedule: Schedule) -> list[Job]:
    return await Job.filter(
        idempotency_scope="schedule", idempotency_key__startswith=schedule.key_prefix()
    ).order_by("id")


def test_periods_are_cut_from_the_epoch() -> None:
    every_ten = Schedule("expire-lots", "expiry.run", timedelta(minutes=10))
    assert every_ten.period_start(T0) == datetime(2026, 11, 23, 14, 50, tzinfo=UTC)
    assert every_ten.key(every_ten.period_start(T0)) == "schedule:expire-lots:20261123T145000Z"
    daily_at_two = Schedule("rollups", "reports.rollup", timedelta(days=1), offset=timedelta(hours=2))
    assert daily_at_two.period_start(T0) == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert daily_at_two.period_start(datetime(2026, 11, 23, 1, 59, tzinfo=UTC)) == datetime(
        2026, 11, 22, 2, 0, tzinfo=UTC
    )
    with pytest.raises(ValueError):
        Schedule("a:b", "k", timedelta(minutes=1))


async def test_runners_ticking_together_enqueue_one_job_per_period(app: Starlette) -> None:
    schedule = _schedule(unique_kind("sched"), overlap=True)
    runners = _runners(app, schedule, 4)
    for now in (
        T0,
        T0 + timedelta(minutes=1),
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=10),
        T0 + timedelta(minutes=25),
    ):
        await asyncio.gather(*(r.tick_schedules(now) for r in runners))
    jobs = await _jobs_of(schedule)
    starts = ["2026-11-23T14:50:00+00:00", "2026-11-23T15:00:00+00:00", "2026-11-23T15:20:00+00:00"]
    assert [j.params["periodStart"] for j in jobs] == starts
    assert all(j.kind == schedule.kind and j.params["batch"] == 500 and j.brand_id is None for j in jobs)
    assert sum(r.stats.schedules_enqueued for r in runners) == 3


async def test_a_period_is_skipped_while_the_previous_job_is_still_running(app: Starlette) -> None:
    schedule = _schedule(unique_kind("nooverlap"))
    first, second = _runners(app, schedule, 2)
    await first.tick_schedules(T0)
    [job] = await _jobs_of(schedule)
    await second.tick_schedules(T0 + timedelta(minutes=10))  # the 14:50 job is still queued: skip 15:00
    assert len(await _jobs_of(schedule)) == 1
    await Job.filter(id=job.id).update(status=JobStatus.DONE)
    await second.tick_schedules(T0 + timedelta(minutes=20))
    assert [j.params["periodStart"] for j in await _jobs_of(schedule)] == [
        "2026-11-23T14:50:00+00:00",
        "2026-11-23T15:10:00+00:00",
    ]


@pytest.mark.parametrize("off", [{"name"}, {"all"}])
async def test_a_schedule_is_turned_off_by_a_setting(app: Starlette, off: set[str]) -> None:
    schedule = _schedule(unique_kind("off"), overlap=True)
    names = frozenset(schedule.name if n == "name" else n for n in off)
    [runner] = _runners(app, schedule, 1, schedules_off=names)
    assert await runner.tick_schedules(T0) == []
    assert await _jobs_of(schedule) == []


async def test_a_running_worker_enqueues_and_runs_its_schedules(app: Starlette) -> None:
    schedule = _schedule(unique_kind("live"))
    [runner] = _runners(app, schedule, 1)
    await runner.start()
    try:
        for _ in range(200):
            jobs = await _jobs_of(schedule)
            if jobs and jobs[0].status is JobStatus.DONE:
                break
            await asyncio.sleep(0.02)
    finally:
        await runner.stop()
    [job] = jobs
    assert (
        job.status is JobStatus.DONE
        and job.params["periodStart"] == schedule.period_start(job.created_at).isoformat()
    )

"""The runner in process: chunks, progress, failures, cancellation, leases, shutdown, several runners."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import timedelta

from prometheus_client import REGISTRY
from starlette.applications import Starlette

from hub.models import Job, JobItemFailure, JobStatus
from hub.worker import store
from hub.worker.events import JobProgress, brand_jobs_channel, job_progress
from hub.worker.handlers import JobContext
from hub.worker.runner import Runner
from tests.helpers import World, pk
from tests.worker.handlers import (
    EMBEDDED_KIND,
    FAST,
    Runners,
    Steps,
    permanent_failure,
    unique_kind,
    wait_status,
    wait_until,
)


async def test_a_job_runs_chunk_by_chunk_and_publishes_its_progress(
    app: Starlette, runners: Runners, world: World
) -> None:
    broker = app.state.services.broker
    steps = Steps(unique_kind("progress"), n=10, chunk=3)
    job, created = await store.enqueue(steps.kind, brand_id=pk(world.a.id), name="ten items")
    assert created and job.status is JobStatus.QUEUED and job.total is None

    async with broker.subscribe([brand_jobs_channel(pk(world.a.id))]) as brand_feed:
        progress: list[JobProgress] = []

        async def follow() -> None:
            async for event in job_progress(broker, job.id):
                progress.append(event)

        follower = asyncio.create_task(follow())
        await asyncio.sleep(0.05)  # the follower has read the queued row before the runner starts
        await runners.start(steps)
        await asyncio.wait_for(follower, 15)
        brand_events = []
        while not brand_feed.queue.empty():
            brand_events.append(JobProgress.from_message(await brand_feed.get()))

    job = await Job.get(id=job.id)
    assert job.status is JobStatus.DONE and (job.total, job.done, job.failed) == (10, 10, 0)
    assert job.attempts == 1 and job.lease_owner is None and job.finished_at is not None
    assert steps.items_of(job.id) == list(range(10)) and steps.plans == 1
    # Typed events, newest revision last, never going backwards, ending with the committed row.
    assert progress[0].status is JobStatus.QUEUED
    assert [e.revision for e in progress] == sorted({e.revision for e in progress})
    assert [e.done for e in progress] == sorted(e.done for e in progress)
    assert progress[-1] == JobProgress.of(job)
    assert {e.done for e in progress if e.status is JobStatus.RUNNING} >= {3, 6, 9}
    # The brand's channel carried the same job's events (other tests' jobs may be there too).
    mine = [e for e in brand_events if e.job_id == job.id]
    assert mine and mine[-1] == JobProgress.of(job)


async def test_failed_items_are_counted_and_the_first_ones_recorded(runners: Runners, world: World) -> None:
    steps = Steps(unique_kind("failures"), n=12, chunk=4, fail_items=frozenset({1, 3, 5, 7, 9, 11}))
    job, _ = await store.enqueue(steps.kind, brand_id=pk(world.a.id))
    await runners.start(steps, settings=replace(FAST, failures_kept=4))
    job = await wait_status(job.id, JobStatus.DONE)
    assert (job.total, job.done, job.failed) == (12, 6, 6)
    recorded = await JobItemFailure.filter(job_id=job.id).order_by("id")
    assert [(f.item_key, f.code) for f in recorded] == [(str(i), "BAD_ITEM") for i in (1, 3, 5, 7)]


async def test_a_queued_job_is_cancelled_at_once(runners: Runners, world: World) -> None:
    steps = Steps(unique_kind("cancel-queued"))
    job, _ = await store.enqueue(steps.kind, brand_id=pk(world.a.id))
    job = await store.request_cancel(job.id)
    assert job.status is JobStatus.CANCELLED and job.finished_at is not None
    runner = await runners.start(steps)
    await asyncio.sleep(0.1)
    assert await store.claim([steps.kind], "nobody", 5) is None
    assert steps.processed == [] and runner.stats.jobs_started == 0


async def test_a_running_job_stops_after_its_current_chunk(runners: Runners, world: World) -> None:
    steps = Steps(unique_kind("cancel-running"), n=9, chunk=3, hold_attempts=frozenset({1}))
    job, _ = await store.enqueue(steps.kind, brand_id=pk(world.a.id))
    await runners.start(steps)
    await asyncio.wait_for(steps.chunk_started.wait(), 10)
    job = await store.request_cancel(job.id)
    assert job.status is JobStatus.RUNNING and job.cancel_requested_at is not None
    steps.gate.set()
    job = await wait_status(job.id, JobStatus.CANCELLED)
    # The chunk under way was finished and counted; nothing after it ran.
    assert steps.items_of(job.id) == [0, 1, 2] and job.done == 3 and job.cursor == {"next": 3}


class FrozenHeartbeat(Runner):
    """A runner whose heartbeats never arrive, like a process stopped by the kernel or a long GC."""

    async def _heartbeat(self, ctx: JobContext) -> None:
        await asyncio.Event().wait()


async def test_a_job_is_taken_over_after_its_lease_expires_and_the_old_runner_cannot_write(
    runners: Runners, world: World
) -> None:
    steps = Steps(unique_kind("takeover"), n=6, chunk=2, hold_attempts=frozenset({1}))
    job, _ = await store.enqueue(steps.kind, brand_id=pk(world.a.id))
    short = replace(FAST, lease_seconds=0.5)
    # One slot: the frozen runner's own loop must not take its job over again.
    frozen = await runners.start(steps, settings=replace(short, concurrency=1), runner_class=FrozenHeartbeat)
    await asyncio.wait_for(steps.chunk_started.wait(), 10)
    taken = await runners.start(steps, settings=short)

    job = await wait_status(job.id, JobStatus.DONE)
    assert job.attempts == 2 and job.lease_owner is None
    assert steps.processed == [(job.id, i, 2) for i in range(6)]  # all by the second runner
    # The frozen runner wakes up: it holds no lease any more, so it writes nothing and stops.
    steps.gate.set()
    await wait_until(lambda: frozen.running_jobs == [])
    assert frozen.stats.leases_lost == 1 and taken.stats.jobs_ended["done"] == 1
    assert [i for j, i, a in steps.processed if a == 1] == []
    after = await Job.get(id=job.id)
    assert (after.status, after.done, after.revision) == (JobStatus.DONE, 6, job.revision)


async def test_runners_never_run_one_job_at_once(runners: Runners, world: World) -> None:
    steps = Steps(unique_kind("many"), n=8, chunk=2, delay=0.002)
    jobs = [(await store.enqueue(steps.kind, brand_id=pk(world.a.id)))[0] for _ in range(8)]
    started = [await runners.start(steps) for _ in range(4)]
    for job in jobs:
        await wait_status(job.id, JobStatus.DONE, timeout=30)
    assert steps.overlaps == 0
    assert Counter((j, i) for j, i, _ in steps.processed) == Counter(
        {(j.id, i): 1 for j in jobs for i in range(8)}
    )
    assert all(j.attempts == 1 for j in await Job.filter(id__in=[j.id for j in jobs]))
    assert sum(r.stats.jobs_ended["done"] for r in started) == 8


async def test_a_stopping_runner_finishes_its_chunk_and_hands_the_job_back(
    runners: Runners, world: World
) -> None:
    steps = Steps(unique_kind("stop"), n=9, chunk=3, hold_attempts=frozenset({1}))
    job, _ = await store.enqueue(steps.kind, brand_id=pk(world.a.id))
    first = await runners.start(steps)
    await asyncio.wait_for(steps.chunk_started.wait(), 10)
    stopping = asyncio.create_task(first.stop())
    await asyncio.sleep(0.05)
    steps.gate.set()  # the chunk under way finishes within the grace period
    await asyncio.wait_for(stopping, 10)

    handed_back = await Job.get(id=job.id)
    assert handed_back.status is JobStatus.QUEUED and handed_back.lease_owner is None
    assert handed_back.done == 3 and handed_back.cursor == {"next": 3}
    assert handed_back.attempts == 0  # a clean hand-back is not an attempt
    steps.hold_attempts = frozenset()
    await runners.start(steps)
    job = await wait_status(job.id, JobStatus.DONE)
    assert steps.items_of(job.id) == list(range(9)) and job.done == 9 and steps.plans == 1


async def test_a_chunk_still_running_after_the_grace_period_is_abandoned(
    runners: Runners, world: World
) -> None:
    steps = Steps(unique_kind("abandon"), n=6, chunk=3, hold_attempts=frozenset({1}))
    job, _ = await store.enqueue(steps.kind, brand_id=pk(world.a.id))
    first = await runners.start(steps, settings=replace(FAST, stop_grace_seconds=0.1))
    await asyncio.wait_for(steps.chunk_started.wait(), 10)
    await asyncio.wait_for(first.stop(), 10)
    handed_back = await Job.get(id=job.id)
    assert (handed_back.status, handed_back.done, handed_back.cursor) == (JobStatus.QUEUED, 0, {"next": 0})
    steps.hold_attempts = frozenset()
    await runners.start(steps)
    job = await wait_status(job.id, JobStatus.DONE)
    assert steps.items_of(job.id) == list(range(6))


async def test_an_error_is_retried_from_the_last_committed_chunk(runners: Runners, world: World) -> None:
    def once_at_three(ctx: JobContext, start: int) -> BaseException | None:
        return RuntimeError("database went away") if ctx.attempt == 1 and start == 3 else None

    steps = Steps(unique_kind("retry"), n=6, chunk=3, raise_on=once_at_three)
    job, _ = await store.enqueue(steps.kind, brand_id=pk(world.a.id))
    runner = await runners.start(steps)
    job = await wait_status(job.id, JobStatus.DONE)
    assert job.attempts == 2 and runner.stats.jobs_ended["retry"] == 1
    assert steps.items_of(job.id) == list(range(6))  # items 0-2 were committed and not run again
    assert job.last_error == "RuntimeError: database went away"


async def test_errors_fail_the_job_after_the_last_attempt(runners: Runners, world: World) -> None:
    steps = Steps(unique_kind("fail"), raise_on=lambda ctx, start: ValueError("boom"))
    job, _ = await store.enqueue(steps.kind, brand_id=pk(world.a.id))
    await runners.start(steps, settings=replace(FAST, max_attempts=3))
    job = await wait_status(job.id, JobStatus.FAILED)
    assert job.attempts == 3 and job.last_error == "ValueError: boom" and not job.last_error_expected


async def test_job_failed_ends_the_job_at_once_with_its_message(runners: Runners, world: World) -> None:
    steps = Steps(unique_kind("jobfailed"), raise_on=permanent_failure("The brand has no points program."))
    job, _ = await store.enqueue(steps.kind, brand_id=pk(world.a.id))
    await runners.start(steps)
    job = await wait_status(job.id, JobStatus.FAILED)
    assert (
        job.attempts == 1 and job.last_error == "The brand has no points program." and job.last_error_expected
    )


async def test_a_job_abandoned_too_often_is_failed_not_run(runners: Runners, world: World) -> None:
    steps = Steps(unique_kind("crashloop"))
    job, _ = await store.enqueue(steps.kind, brand_id=pk(world.a.id))
    # As if five workers in a row died holding it.
    await Job.filter(id=job.id).update(
        status=JobStatus.RUNNING,
        attempts=5,
        lease_owner="dead",
        lease_expires_at=store.utcnow() - timedelta(1),
    )
    await runners.start(steps)
    job = await wait_status(job.id, JobStatus.FAILED)
    assert steps.processed == [] and job.attempts == 6
    assert job.last_error == "Stopped after 5 runs that did not finish." and job.last_error_expected


async def test_workers_claim_only_kinds_they_know(world: World) -> None:
    kind = unique_kind("unknown")
    job, _ = await store.enqueue(kind, brand_id=pk(world.a.id))
    assert await store.claim([unique_kind("other")], "me", 5) is None
    claimed = await store.claim([kind], "me", 5)
    assert claimed is not None and claimed.id == job.id and claimed.lease_owner == "me"
    assert await store.claim([kind], "someone-else", 5) is None  # its lease is live


async def test_the_app_runs_an_embedded_worker(app: Starlette, world: World) -> None:
    assert isinstance(app.state.worker, Runner) and EMBEDDED_KIND in app.state.worker.registry.kinds
    job, _ = await store.enqueue(EMBEDDED_KIND, brand_id=pk(world.a.id))
    app.state.worker.wake()
    job = await wait_status(job.id, JobStatus.DONE)
    assert job.lease_owner is None and job.done == 9


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_job_runs_are_counted_in_the_metrics(runners: Runners, world: World) -> None:
    steps = Steps(unique_kind("metrics"), n=7, chunk=3, fail_items=frozenset({4}))
    running_before = _sample("hub_worker_jobs_running")
    job, _ = await store.enqueue(steps.kind, brand_id=pk(world.a.id))
    await runners.start(steps)
    await wait_status(job.id, JobStatus.DONE)
    await wait_until(lambda: _sample("hub_worker_jobs_running") == running_before)
    assert _sample("hub_worker_jobs_started_total", kind=steps.kind) == 1
    assert _sample("hub_worker_jobs_ended_total", kind=steps.kind, outcome="done") == 1
    assert _sample("hub_worker_items_total", kind=steps.kind, result="done") == 6
    assert _sample("hub_worker_items_total", kind=steps.kind, result="failed") == 1
    assert _sample("hub_worker_chunk_duration_seconds_count", kind=steps.kind) == 3

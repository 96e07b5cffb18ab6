"""The runner: claims due jobs, runs them chunk by chunk under a lease, and enqueues scheduled work.

One runner per process (embedded in ``hub serve`` or alone in ``hub worker``) runs up to
``concurrency`` jobs at once. For each job it holds a lease, renewed by a heartbeat every third of the
lease, and after every chunk it commits the cursor and counts (fenced by the lease, see ``store``),
then publishes the job's progress. Between chunks it honours a cancellation and its own shutdown.

Shutdown (``stop()``, on SIGTERM): no new claims; a running chunk may finish within the grace period
and the job is then handed back at once (queued, its cursor kept, the run not counted as an attempt);
a chunk still running after the grace period is abandoned, and the job is handed back if the database
can still be reached, or otherwise taken over when its lease expires. Either way the next worker
starts from the last committed cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable
from datetime import datetime
from typing import TypeVar

from hub.errors import DomainError
from hub.events.broker import LocalBroker
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import IdempotencyClaim
from hub.models import Job, JobStatus
from hub.settings import WorkerSettings
from hub.worker import store
from hub.worker.events import publish_progress
from hub.worker.handlers import JobContext, JobFailed, LeaseLost
from hub.worker.observe import WorkerStats
from hub.worker.registry import Registry
from hub.worker.schedules import SCHEDULE_SCOPE, Schedule

log = logging.getLogger("hub.worker")
T = TypeVar("T")
# A worker trusts its lease for this share of the lease time after the last renewal: the rest is the
# margin for clock differences between hosts and for the renewal's own round trip.
LEASE_TRUST = 0.8


def new_owner_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


def _schedule_request_hash(kind: str, params: dict[str, object]) -> str:
    body = json.dumps({"op": "schedule", "kind": kind, "params": params}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


class Runner:
    def __init__(
        self,
        registry: Registry,
        broker: LocalBroker,
        settings: WorkerSettings,
        *,
        owner: str | None = None,
        retry_base_seconds: float = 1.0,
        ledger: LedgerWriter | None = None,
    ) -> None:
        self.registry = registry
        self.broker = broker
        # The process's ledger writer (its commit hook publishes the events). A runner given none
        # writes through its own, whose events the relay publishes after its grace period.
        self.ledger = ledger or LedgerWriter()
        self._owns_ledger = ledger is None
        self.settings = settings
        self.owner = owner or new_owner_id()
        self.retry_base_seconds = retry_base_seconds
        self.stats = WorkerStats()
        self._wake = asyncio.Event()
        self._stopping = False
        self._main: asyncio.Task[None] | None = None
        self._jobs: dict[int, asyncio.Task[None]] = {}
        self._schedule_periods: dict[str, datetime] = {}

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._main = asyncio.create_task(self._loop(), name=f"worker {self.owner}")
        log.info(
            "worker %s started: kinds %s, schedules %s",
            self.owner,
            ", ".join(self.registry.kinds) or "none",
            ", ".join(s.name for s in self.registry.schedules if self.settings.schedule_enabled(s.name))
            or "none",
        )

    def wake(self) -> None:
        """Look for work now instead of at the next poll (e.g. right after enqueuing in-process)."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming, let running chunks finish within the grace period, hand the jobs back."""
        self._stopping = True
        self._wake.set()
        if self._main is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        running = list(self._jobs.values())
        if running:
            _, late = await asyncio.wait(running, timeout=self.settings.stop_grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._owns_ledger:
            await self.ledger.aclose()
        log.info("worker %s stopped", self.owner)

    @property
    def running_jobs(self) -> list[int]:
        return list(self._jobs)

    # -- the loop -------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.tick_schedules()
                await self._claim_free_slots()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker %s: looking for work failed; trying again", self.owner)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_seconds)

    async def _claim_free_slots(self) -> None:
        while not self._stopping and len(self._jobs) < self.settings.concurrency:
            job = await store.claim(self.registry.kinds, self.owner, self.settings.lease_seconds)
            if job is None:
                return
            task = asyncio.create_task(self._run(job), name=f"job {job.id}")
            self._jobs[job.id] = task
            task.add_done_callback(functools.partial(self._job_done, job.id))

    def _job_done(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self._jobs.pop(job_id, None)
        self._wake.set()  # a slot is free

    async def tick_schedules(self, now: datetime | None = None) -> list[Job]:
        """Enqueue the current period's job of every enabled schedule not yet handled here."""
        now = now or store.utcnow()
        created: list[Job] = []
        for schedule in self.registry.schedules:
            if not self.settings.schedule_enabled(schedule.name) or schedule.kind not in self.registry.kinds:
                continue
            start = schedule.period_start(now)
            if self._schedule_periods.get(schedule.name) == start:
                continue
            job = await self._enqueue_period(schedule, start)
            self._schedule_periods[schedule.name] = start
            if job is not None:
                created.append(job)
        return created

    async def _enqueue_period(self, schedule: Schedule, start: datetime) -> Job | None:
        if not schedule.overlap and await store.schedule_active(SCHEDULE_SCOPE, schedule.key_prefix()):
            log.info("schedule %s: the previous job is still running; skipping %s", schedule.name, start)
            return None
        params = schedule.job_params(start)
        claim = IdempotencyClaim(
            SCHEDULE_SCOPE, schedule.key(start), _schedule_request_hash(schedule.kind, params)
        )
        try:
            job, created = await store.enqueue(
                schedule.kind,
                name=f"{schedule.name} {start.strftime('%Y-%m-%d %H:%M:%S')} UTC",
                params=params,
                claim=claim,
            )
        except DomainError as error:
            # Another release declared the same schedule with other parameters for this period.
            log.warning("schedule %s: %s", schedule.name, error.message)
            return None
        if not created:
            return None
        self.stats.schedule_enqueued(job)
        await publish_progress(self.broker, job)
        return job

    # -- one job ------------------------------------------------------------------------------

    async def _bounded(self, work: Awaitable[T]) -> T:
        return await asyncio.wait_for(work, timeout=self.settings.chunk_timeout_seconds)

    def _trust_lease(self, ctx: JobContext, renewed_at: float) -> None:
        ctx.lease_valid_until = renewed_at + self.settings.lease_seconds * LEASE_TRUST

    async def _heartbeat(self, ctx: JobContext) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_seconds / 3)
            sent = time.monotonic()
            try:
                held = await store.heartbeat(ctx.job_id, self.owner, self.settings.lease_seconds)
            except Exception:  # the lease is simply not extended; the job notices
                log.warning("job %d: heartbeat failed", ctx.job_id, exc_info=True)
                continue
            if not held:
                ctx.lease_lost = True
                return
            self._trust_lease(ctx, sent)

    async def _run(self, job: Job) -> None:
        claimed_at = time.monotonic()
        ctx = JobContext(
            job_id=job.id,
            kind=job.kind,
            brand_id=job.brand_id,
            name=job.name,
            params=dict(job.params),
            attempt=job.attempts,
            created_by_key_id=job.created_by_id,
            total=job.total,
            done=job.done,
            failed=job.failed,
            ledger=self.ledger,
            broker=self.broker,
        )
        self._trust_lease(ctx, claimed_at)
        heartbeat = asyncio.create_task(self._heartbeat(ctx), name=f"heartbeat {job.id}")
        self.stats.job_started(job)
        await publish_progress(self.broker, job)
        try:
            job, outcome = await self._chunks(job, ctx)
            await publish_progress(self.broker, job)
            self.stats.job_ended(job, outcome, time.monotonic() - claimed_at)
        except LeaseLost:
            self.stats.lease_lost(job)
        except asyncio.CancelledError:
            # The grace period is over: abandon the chunk, hand the job back if the database answers
            # (if not, its lease expires and another worker takes it over).
            outcome = "abandoned"
            with contextlib.suppress(Exception):
                job = await asyncio.wait_for(store.release(job.id, self.owner), timeout=5)
                outcome = "released"
            self.stats.job_ended(job, outcome, time.monotonic() - claimed_at)
            raise
        except Exception as error:  # noqa: BLE001 - every failure of a job is recorded on the job
            await self._failed(job, error, claimed_at)
        finally:
            self.stats.job_left()
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _chunks(self, job: Job, ctx: JobContext) -> tuple[Job, str]:
        """Run the job from its cursor until it ends, is cancelled or this worker stops."""
        if job.attempts > self.settings.max_attempts:
            message = f"Stopped after {job.attempts - 1} runs that did not finish."
            return await store.finish(job.id, self.owner, JobStatus.FAILED, message, expected=True), "failed"
        handler = self.registry.handler(job.kind)
        if job.planned_at is None and job.cancel_requested_at is None:
            plan = await self._bounded(handler.plan(ctx))
            job = await store.save_plan(job.id, self.owner, plan, self.settings.lease_seconds)
            ctx.total = job.total
            await publish_progress(self.broker, job)
        while True:
            if job.cancel_requested_at is not None:
                return await store.finish(job.id, self.owner, JobStatus.CANCELLED), "cancelled"
            if self._stopping:
                return await store.release(job.id, self.owner), "released"
            ctx.ensure_lease()
            started = time.monotonic()
            chunk = await self._bounded(handler.run_chunk(ctx, job.cursor or {}))
            seconds = time.monotonic() - started
            committing = time.monotonic()
            job = await store.commit_chunk(
                job.id, self.owner, chunk, self.settings.lease_seconds, self.settings.failures_kept
            )
            self._trust_lease(ctx, committing)
            ctx.done, ctx.failed = job.done, job.failed
            self.stats.chunk(job, seconds, chunk)
            if job.status is JobStatus.DONE:
                return job, "done"
            await publish_progress(self.broker, job)

    async def _failed(self, job: Job, error: Exception, claimed_at: float) -> None:
        expected = isinstance(error, JobFailed)
        if not expected:
            log.error("job %d (%s) raised", job.id, job.kind, exc_info=error)
        text = error.message if isinstance(error, JobFailed) else f"{type(error).__name__}: {error}"
        try:
            if expected or job.attempts >= self.settings.max_attempts:
                job = await store.finish(job.id, self.owner, JobStatus.FAILED, text, expected=expected)
                outcome = "failed"
            else:
                delay = min(self.retry_base_seconds * 2 ** (job.attempts - 1), 300.0)
                job = await store.retry_later(job.id, self.owner, text, delay)
                outcome = "retry"
        except LeaseLost:
            self.stats.lease_lost(job)
            return
        except Exception:  # the lease expires and another worker takes the job over
            log.exception("job %d: could not record its failure", job.id)
            self.stats.job_ended(job, "abandoned", time.monotonic() - claimed_at)
            return
        await publish_progress(self.broker, job)
        self.stats.job_ended(job, outcome, time.monotonic() - claimed_at)

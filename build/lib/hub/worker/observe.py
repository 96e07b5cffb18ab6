"""What a worker reports about its jobs: log lines, Prometheus instruments and per-runner counters.

This class is the one place the runner reports through. The instruments (``hub_worker_*`` in
``hub/metrics.py``) are per process and appear on ``/metrics`` of ``hub serve`` (embedded runners) or
on ``hub worker --metrics-port``; the plain counters are per runner (tests read them).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from hub import metrics
from hub.models import Job
from hub.worker.handlers import Chunk

log = logging.getLogger("hub.worker")


@dataclass
class WorkerStats:
    jobs_started: int = 0
    # By final status, or "retry", "released" (handed back), "abandoned" (could not be written).
    jobs_ended: Counter[str] = field(default_factory=Counter)
    leases_lost: int = 0
    chunks: int = 0
    chunk_seconds: float = 0.0
    chunk_seconds_max: float = 0.0
    items_done: int = 0
    items_failed: int = 0
    schedules_enqueued: int = 0

    def job_started(self, job: Job) -> None:
        self.jobs_started += 1
        metrics.WORKER_JOBS_STARTED.labels(job.kind).inc()
        metrics.WORKER_JOBS_RUNNING.inc()
        log.info(
            "job %d (%s) started: attempt %d, resuming from cursor %s",
            job.id,
            job.kind,
            job.attempts,
            job.cursor,
        )

    def chunk(self, job: Job, seconds: float, chunk: Chunk) -> None:
        self.chunks += 1
        self.chunk_seconds += seconds
        self.chunk_seconds_max = max(self.chunk_seconds_max, seconds)
        self.items_done += chunk.done
        self.items_failed += len(chunk.failed)
        metrics.WORKER_CHUNK_DURATION.labels(job.kind).observe(seconds)
        metrics.WORKER_ITEMS.labels(job.kind, "done").inc(chunk.done)
        metrics.WORKER_ITEMS.labels(job.kind, "failed").inc(len(chunk.failed))
        log.debug(
            "job %d chunk: %d done, %d failed in %.3f s; progress %d+%d of %s",
            job.id,
            chunk.done,
            len(chunk.failed),
            seconds,
            job.done,
            job.failed,
            job.total,
        )

    def job_ended(self, job: Job, outcome: str, seconds: float) -> None:
        self.jobs_ended[outcome] += 1
        metrics.WORKER_JOBS_ENDED.labels(job.kind, outcome).inc()
        level = logging.WARNING if outcome in ("failed", "retry") else logging.INFO
        log.log(
            level,
            "job %d (%s) %s after %.2f s: %d done, %d failed of %s%s",
            job.id,
            job.kind,
            outcome,
            seconds,
            job.done,
            job.failed,
            job.total,
            f"; error: {job.last_error}" if outcome in ("failed", "retry") and job.last_error else "",
        )

    def lease_lost(self, job: Job) -> None:
        self.leases_lost += 1
        metrics.WORKER_JOBS_ENDED.labels(job.kind, "lease_lost").inc()
        log.warning("job %d: lease lost, another worker may be running it; stopped without writing", job.id)

    def job_left(self) -> None:
        """This process stopped running a job, however its run ended."""
        metrics.WORKER_JOBS_RUNNING.dec()

    def schedule_enqueued(self, job: Job) -> None:
        self.schedules_enqueued += 1
        metrics.WORKER_SCHEDULED.labels(job.kind).inc()
        log.info("schedule enqueued job %d (%s) %s", job.id, job.kind, job.name)

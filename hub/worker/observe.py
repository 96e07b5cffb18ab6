"""What a worker reports about its jobs: log lines and counters.

The counters are per process and kept on the runner (tests read them). To export them, give them
Prometheus instruments in ``hub/metrics.py`` and call those from the methods below: this class is the
one place the worker reports through.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from hub.models import Job
from hub.worker.handlers import Chunk

log = logging.getLogger("hub.worker")


@dataclass
class WorkerStats:
    jobs_started: int = 0
    jobs_ended: Counter[str] = field(default_factory=Counter)  # by final status, or "retry"/"released"
    leases_lost: int = 0
    chunks: int = 0
    chunk_seconds: float = 0.0
    chunk_seconds_max: float = 0.0
    items_done: int = 0
    items_failed: int = 0
    schedules_enqueued: int = 0

    def job_started(self, job: Job) -> None:
        self.jobs_started += 1
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

    def lease_lost(self, job_id: int) -> None:
        self.leases_lost += 1
        log.warning("job %d: lease lost, another worker may be running it; stopped without writing", job_id)

    def schedule_enqueued(self, job: Job) -> None:
        self.schedules_enqueued += 1
        log.info("schedule enqueued job %d (%s) %s", job.id, job.kind, job.name)

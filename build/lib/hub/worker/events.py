"""Job progress on the broker: one typed event per committed change of a job row.

Published after each commit to two channels: the job's own (``job:<id>``) and its brand's
(``jobs:brand:<id>``, or ``jobs:platform`` for platform-wide jobs), so a client can follow one job
(a ``jobProgress`` subscription) or everything a brand has running (the HQ console).

Delivery is at most once: progress is not a ledger event and needs no outbox, because the row is the
truth and the next event supersedes a lost one. ``job_progress`` reads the row first and then passes
live events on, dropping any whose ``revision`` is not newer, so a reader never goes backwards.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.events.broker import LocalBroker
from hub.models import FINISHED_STATUSES, Job, JobStatus

log = logging.getLogger(__name__)


def job_channel(job_id: int) -> str:
    return f"job:{job_id}"


def brand_jobs_channel(brand_id: int | None) -> str:
    return f"jobs:brand:{brand_id}" if brand_id is not None else "jobs:platform"


@dataclass(frozen=True, slots=True)
class JobProgress:
    job_id: int
    brand_id: int | None
    kind: str
    status: JobStatus
    revision: int
    total: int | None
    done: int
    failed: int
    updated_at: datetime

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @classmethod
    def of(cls, job: Job) -> JobProgress:
        return cls(
            job_id=job.id,
            brand_id=job.brand_id,
            kind=job.kind,
            status=JobStatus(job.status),
            revision=job.revision,
            total=job.total,
            done=job.done,
            failed=job.failed,
            updated_at=job.updated_at,
        )

    def to_message(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "brandId": self.brand_id,
            "kind": self.kind,
            "status": self.status.value,
            "revision": self.revision,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "updatedAt": self.updated_at.isoformat(),
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> JobProgress:
        return cls(
            job_id=int(message["jobId"]),
            brand_id=message["brandId"],
            kind=message["kind"],
            status=JobStatus(message["status"]),
            revision=int(message["revision"]),
            total=message["total"],
            done=int(message["done"]),
            failed=int(message["failed"]),
            updated_at=datetime.fromisoformat(message["updatedAt"]),
        )


async def publish_progress(broker: LocalBroker, job: Job) -> None:
    """Announce a committed job row. A broker failure is logged: the row stays the truth."""
    event = JobProgress.of(job)
    message = event.to_message()
    try:
        await broker.publish_many(
            [(job_channel(event.job_id), message), (brand_jobs_channel(event.brand_id), message)]
        )
    except Exception:  # progress events are best effort by design
        log.warning("could not publish progress of job %d", event.job_id, exc_info=True)


async def job_progress(broker: LocalBroker, job_id: int) -> AsyncGenerator[JobProgress, None]:
    """The job's state now, then each newer state, ending after a finished one.

    Subscribes before reading the row, so no change between the read and the first live event is
    missed; a broker overflow or reconnect (``RESYNC``) re-reads the row.
    """
    async with broker.subscribe([job_channel(job_id)]) as sub:
        job = await Job.get_or_none(id=job_id)
        if job is None:
            return
        last = JobProgress.of(job)
        yield last
        while not last.finished:
            message = await sub.get()
            if isinstance(message, dict):
                event = JobProgress.from_message(message)
            else:  # RESYNC: a broker overflow or reconnect
                event = JobProgress.of(await Job.get(id=job_id))
            if event.revision > last.revision:
                last = event
                yield event

"""Reading and cancelling background jobs. Jobs are created by the domains that need them.

Who sees a job: the platform sees every job; a brand's HQ sees its brand's jobs; stores and members
see none. A job the caller may not see answers NOT_FOUND, the same as a job that does not exist.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from tortoise.queryset import QuerySet

from hub import policy
from hub.auth import Principal
from hub.errors import DomainError, ErrorCode
from hub.events.broker import LocalBroker
from hub.models import Job, JobItemFailure, JobStatus
from hub.resolvers import access
from hub.worker import store
from hub.worker.events import JobProgress, job_progress, publish_progress

__all__ = ["JobStatus", "cancel_job", "failed_items", "get_job", "readable_jobs", "watch_job"]


async def readable_jobs(principal: Principal | None, brand_id: int | None = None) -> QuerySet[Job]:
    """The jobs a caller may read, optionally of one brand (which must be in its reach)."""
    query = access.jobs(principal, policy.LIST_JOBS)
    if brand_id is None:
        return query
    await access.get_brand(principal, policy.LIST_JOBS, brand_id)
    return query.filter(brand_id=brand_id)


async def get_job(
    principal: Principal | None, job_id: int, field: str = "id", action: policy.Action = policy.READ_JOB
) -> Job:
    return await access.get_job(principal, action, job_id, field)


def _refuse_finished(job: Job) -> None:
    if job.status in (JobStatus.DONE, JobStatus.FAILED):
        raise DomainError(ErrorCode.JOB_FINISHED, f"This job has finished ({job.status.value}).", "jobId")


async def cancel_job(principal: Principal | None, broker: LocalBroker, job_id: int) -> Job:
    """A queued job is cancelled at once, a running one after its current chunk; idempotent."""
    job = await get_job(principal, job_id, "jobId", policy.CANCEL_JOB)
    _refuse_finished(job)
    if job.status is JobStatus.CANCELLED or job.cancel_requested_at is not None:
        return job
    job = await store.request_cancel(job_id)
    # It may have finished meanwhile: then the request matched no row and nothing was written.
    _refuse_finished(job)
    await publish_progress(broker, job)
    return job


def failed_items(job: Job) -> QuerySet[JobItemFailure]:
    return JobItemFailure.filter(job_id=job.id)


async def watch_job(
    principal: Principal | None, broker: LocalBroker, job_id: int
) -> AsyncGenerator[JobProgress, None]:
    """The job's progress now, then after every committed change, until it finishes (see
    ``hub.worker.events.job_progress``). A job out of the caller's reach is NOT_FOUND."""
    job = await get_job(principal, job_id, "jobId", policy.WATCH_JOB)
    async for event in job_progress(broker, job.id):
        yield event

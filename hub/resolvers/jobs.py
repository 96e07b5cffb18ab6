"""Reading and cancelling background jobs. Jobs are created by the domains that need them.

Who sees a job: the platform sees every job; a brand's HQ sees its brand's jobs; stores and members
see none. A job the caller may not see answers NOT_FOUND, the same as a job that does not exist.
"""

from __future__ import annotations

from tortoise.queryset import QuerySet

from hub.auth import Principal
from hub.errors import DomainError, ErrorCode, NotFound, PermissionDenied
from hub.events.broker import LocalBroker
from hub.models import Job, JobItemFailure, JobStatus, Role
from hub.resolvers.access import require
from hub.worker import store
from hub.worker.events import publish_progress

__all__ = ["JobStatus", "cancel_job", "failed_items", "get_job", "readable_jobs"]


def readable_jobs(principal: Principal | None, brand_id: int | None = None) -> QuerySet[Job]:
    """The jobs a caller may read, optionally of one brand."""
    p = require(principal, Role.PLATFORM, Role.BRAND)
    if p.role is Role.BRAND:
        if brand_id is not None and brand_id != p.brand_id:
            raise PermissionDenied("This belongs to another brand.", "brandId")
        return Job.filter(brand_id=p.brand_id)
    return Job.filter(brand_id=brand_id) if brand_id is not None else Job.all()


async def get_job(principal: Principal | None, job_id: int, field: str = "id") -> Job:
    job = await readable_jobs(principal).filter(id=job_id).first()
    if job is None:
        raise NotFound("No such job.", field)
    return job


def _refuse_finished(job: Job) -> None:
    if job.status in (JobStatus.DONE, JobStatus.FAILED):
        raise DomainError(ErrorCode.JOB_FINISHED, f"This job has already {job.status}.", "jobId")


async def cancel_job(principal: Principal | None, broker: LocalBroker, job_id: int) -> Job:
    """A queued job is cancelled at once, a running one after its current chunk; idempotent."""
    job = await get_job(principal, job_id, "jobId")
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

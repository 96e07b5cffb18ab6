"""Background jobs for HQ and the platform: read progress, follow it live, cancel."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import policy
from hub.resolvers import jobs as service
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, Connection, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import Brand, _resolve_each, connection


@strawberry.enum(name="JobStatus", description="Where a background job is in its life.")
class JobStatusEnum(Enum):
    QUEUED = strawberry.enum_value(
        "queued", description="Waiting for a worker: new, handed back at a shutdown, or retrying."
    )
    RUNNING = strawberry.enum_value("running", description="A worker is processing it, chunk by chunk.")
    DONE = strawberry.enum_value("done", description="Every item was processed (some may have failed).")
    FAILED = strawberry.enum_value("failed", description="Stopped by an error; see `error`.")
    CANCELLED = strawberry.enum_value("cancelled", description="Stopped on request before it finished.")


@strawberry.type(description="How far a job got. Counts only grow while it runs.")
class JobProgress:
    total: BigInt | None = strawberry.field(
        description="Items to process; null until a worker has planned the job."
    )
    done: BigInt = strawberry.field(description="Items processed.")
    failed: BigInt = strawberry.field(description="Items that could not be processed; see failedItems.")


@strawberry.type(description="One item a job could not process.")
class JobItemFailure:
    item_key: str = strawberry.field(description="Which item, e.g. a membership id.")
    code: str = strawberry.field(description="A stable code, e.g. INSUFFICIENT_POINTS.")
    message: str = strawberry.field(description="Why, in words.")
    created_at: datetime = strawberry.field(description="When the failure was recorded.")
    pk: strawberry.Private[int]


@strawberry.type(description="Background work with its progress, run by the hub's workers.")
class Job(relay.Node):
    id: relay.NodeID[int]
    kind: str = strawberry.field(description="What the job does, e.g. grants.bulk.")
    name: str = strawberry.field(description="The name its creator gave it.")
    status: JobStatusEnum = strawberry.field(description="Where the job is in its life.")
    progress: JobProgress = strawberry.field(description="How far it got.")
    attempts: int = strawberry.field(
        description="Runs so far that did not end in a clean hand-back (a crash, an error, or this run)."
    )
    cancel_requested: bool = strawberry.field(
        description="Cancellation was asked for; a running job stops after its current chunk."
    )
    error: str | None = strawberry.field(
        description="Why it failed or last had to be retried: the job's own message, or 'Internal error.'."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    updated_at: datetime = strawberry.field(description="When its row last changed.")
    started_at: datetime | None = strawberry.field(description="When a worker first took it.")
    finished_at: datetime | None = strawberry.field(description="When it became done, failed or cancelled.")
    brand_pk: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: Any) -> Job:
        error = None
        if m.last_error is not None:
            error = m.last_error if m.last_error_expected else "Internal error."
        return cls(
            id=m.id,
            kind=m.kind,
            name=m.name,
            status=JobStatusEnum(str(m.status)),
            progress=JobProgress(
                total=None if m.total is None else BigInt(m.total),
                done=BigInt(m.done),
                failed=BigInt(m.failed),
            ),
            attempts=m.attempts,
            cancel_requested=m.cancel_requested_at is not None,
            error=error,
            created_at=m.created_at,
            updated_at=m.updated_at,
            started_at=m.started_at,
            finished_at=m.finished_at,
            brand_pk=m.brand_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Job | None]:
        async def fetch(pk: int) -> Job:
            return cls.from_model(await service.get_job(info.context.principal, pk))

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="The brand it works for; null for platform-wide work.")
    async def brand(self, info: Info) -> Brand | None:
        if self.brand_pk is None:
            return None
        return Brand.from_model(await info.context.brands.load(self.brand_pk))

    @strawberry.field(description="Items it could not process, oldest first (the first ones are kept).")
    async def failed_items(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="Page size.")] = 20,
        after: Annotated[str | None, strawberry.argument(description="Cursor of the previous page.")] = None,
    ) -> Connection[JobItemFailure]:
        job = await service.get_job(info.context.principal, self.id)
        return await connection(info, service.failed_items(job), _failure, first, after)


def _failure(m: Any) -> JobItemFailure:
    return JobItemFailure(
        item_key=m.item_key, code=m.code, message=m.message, created_at=m.created_at, pk=m.id
    )


@strawberry.type
class JobQuery:
    @strawberry.field(
        description="Brand HQ or platform: one job. A job that is missing or not the caller's is NOT_FOUND.",
        extensions=[Authorize(policy.READ_JOB)],
    )
    async def job(
        self, info: Info, id: Annotated[relay.GlobalID, strawberry.argument(description="The job's id.")]
    ) -> Job | None:
        return Job.from_model(await service.get_job(info.context.principal, decode_id(id, "Job", "id")))

    @strawberry.field(
        description="Brand HQ: its brand's jobs; platform: any brand's, or all. Newest first.",
        extensions=[Authorize(policy.LIST_JOBS)],
    )
    async def jobs(
        self,
        info: Info,
        brand_id: Annotated[
            relay.GlobalID | None,
            strawberry.argument(description="Only this brand's jobs (an HQ key: its own brand only)."),
        ] = None,
        status: Annotated[
            JobStatusEnum | None, strawberry.argument(description="Only jobs in this status.")
        ] = None,
        first: Annotated[int, strawberry.argument(description="Page size.")] = 20,
        after: Annotated[str | None, strawberry.argument(description="Cursor of the previous page.")] = None,
    ) -> Connection[Job]:
        brand = decode_id(brand_id, "Brand", "brandId") if brand_id else None
        query = await service.readable_jobs(info.context.principal, brand)
        if status is not None:
            query = query.filter(status=status.value)
        return await connection(info, query, Job.from_model, first, after, True)


@strawberry.input(description="Which job to cancel.")
class CancelJobInput:
    job_id: strawberry.ID = strawberry.field(description="The job's id.")


@strawberry.type(description="The job after the cancellation request.")
class CancelJobPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was done, if so.")
    job: Job | None = strawberry.field(default=None, description="The job, cancelled or about to be.")


@strawberry.type
class JobMutation:
    @strawberry.mutation(
        description=(
            "Brand HQ or platform: cancel a job. A queued job is cancelled at once, a running one after"
            " its current chunk (what was already done stays done). Cancelling again is harmless;"
            " a finished job answers JOB_FINISHED."
        ),
        extensions=[Authorize(policy.CANCEL_JOB)],
    )
    async def cancel_job(self, info: Info, input: CancelJobInput) -> CancelJobPayload:
        async def run() -> dict:
            job_id = decode_id(input.job_id, "Job", "jobId")
            job = await service.cancel_job(info.context.principal, info.context.services.broker, job_id)
            return {"job": Job.from_model(job)}

        return await mutate(CancelJobPayload, run)


@strawberry.type(description="A job's state after one committed change: its progress as a worker saved it.")
class JobProgressEvent:
    job_id: relay.GlobalID = strawberry.field(description="The job.")
    status: JobStatusEnum = strawberry.field(description="Where the job is in its life.")
    progress: JobProgress = strawberry.field(description="How far it got.")
    revision: BigInt = strawberry.field(
        description="Grows with every change of the job; an event never has a lower one than the last."
    )
    updated_at: datetime = strawberry.field(description="When the job's row changed.")


@strawberry.type
class JobSubscription:
    @strawberry.subscription(
        description=(
            "Brand HQ or platform: a job's progress, live. The first event is the job as it is now;"
            " then one event per saved change (after each chunk), never going backwards; the stream"
            " ends after the job is done, failed or cancelled. Events are at most once: one that is"
            " lost is superseded by the next, and job(id) always has the latest."
        ),
        extensions=[Authorize(policy.WATCH_JOB)],
    )
    async def job_progress(
        self,
        info: Info,
        job_id: Annotated[relay.GlobalID, strawberry.argument(description="The job's id.")],
    ) -> AsyncGenerator[JobProgressEvent, None]:
        pk = decode_id(job_id, "Job", "jobId")
        async for event in service.watch_job(info.context.principal, info.context.services.broker, pk):
            yield JobProgressEvent(
                job_id=relay.GlobalID("Job", str(event.job_id)),
                status=JobStatusEnum(event.status.value),
                progress=JobProgress(
                    total=None if event.total is None else BigInt(event.total),
                    done=BigInt(event.done),
                    failed=BigInt(event.failed),
                ),
                revision=BigInt(event.revision),
                updated_at=event.updated_at,
            )

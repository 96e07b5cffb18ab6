"""Bulk grants: HQ grants or deducts points for a segment of its members, as a background job."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import policy
from hub.resolvers import grants as service
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.jobs import Job
from hub.schema.points import IDEMPOTENCY_HELP

SEGMENT_HELP = "Filters that must all match; none: every member of the brand."


@strawberry.input(description=f"Which members: {SEGMENT_HELP}")
class SegmentInput:
    tiers: list[str] | None = strawberry.field(default=None, description="Members in one of these tiers.")
    join_store_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Members enrolled at one of these stores (of the brand)."
    )
    last_purchase_before: date | None = strawberry.field(
        default=None,
        description="Members whose latest purchase was before this brand-local day (never bought: no).",
    )
    last_purchase_on_or_after: date | None = strawberry.field(
        default=None,
        description="Members whose latest purchase was on or after this brand-local day (never bought: no).",
    )
    min_points: BigInt | None = strawberry.field(
        default=None, description="Members with at least this many available points."
    )
    max_points: BigInt | None = strawberry.field(
        default=None, description="Members with at most this many available points."
    )

    def fields(self) -> service.SegmentFields:
        return service.SegmentFields(
            tiers=self.tiers,
            join_store_ids=(
                [decode_id(s, "Store", "segment.joinStoreIds") for s in self.join_store_ids]
                if self.join_store_ids is not None
                else None
            ),
            last_purchase_before=self.last_purchase_before,
            last_purchase_on_or_after=self.last_purchase_on_or_after,
            min_points=self.min_points,
            max_points=self.max_points,
        )


@strawberry.type(description=f"Which members a grant reaches: {SEGMENT_HELP}")
class Segment:
    tiers: list[str] = strawberry.field(description="Tiers (empty: any).")
    join_store_ids: list[relay.GlobalID] = strawberry.field(description="Enrolment stores (empty: any).")
    last_purchase_before: datetime | None = strawberry.field(
        description="Latest purchase before this instant (the start of the brand-local day given)."
    )
    last_purchase_on_or_after: datetime | None = strawberry.field(
        description="Latest purchase at or after this instant (the start of the brand-local day given)."
    )
    min_points: BigInt | None = strawberry.field(description="At least this many available points.")
    max_points: BigInt | None = strawberry.field(description="At most this many available points.")

    @classmethod
    def of(cls, s: Any) -> Segment:
        return cls(
            tiers=list(s.tiers),
            join_store_ids=[relay.GlobalID("Store", str(i)) for i in s.join_store_ids],
            last_purchase_before=s.last_purchase_before,
            last_purchase_on_or_after=s.last_purchase_on_or_after,
            min_points=None if s.min_points is None else BigInt(s.min_points),
            max_points=None if s.max_points is None else BigInt(s.max_points),
        )


@strawberry.type(description="A grant (or deduction) of points to a segment, run as a background job.")
class BulkGrant:
    job: Job = strawberry.field(description="The job: status and progress (done, failed, total).")
    name: str = strawberry.field(description="The name HQ gave it.")
    points: BigInt = strawberry.field(description="Points per member: positive grants, negative deducts.")
    reason: str = strawberry.field(description="Why; each member's transaction carries it.")
    segment: Segment = strawberry.field(description="Which members.")
    snapshot_at: datetime | None = strawberry.field(
        description="When the segment was evaluated into a fixed set of members; null until a worker did."
    )
    recipients: BigInt | None = strawberry.field(description="How many members the fixed set holds.")

    @classmethod
    def of(cls, g: service.BulkGrant) -> BulkGrant:
        return cls(
            job=Job.from_model(g.job),
            name=g.job.name,
            points=BigInt(g.points),
            reason=g.reason,
            segment=Segment.of(g.segment),
            snapshot_at=g.plan.snapshot_at if g.plan else None,
            recipients=BigInt(g.plan.recipients) if g.plan else None,
        )


@strawberry.type
class GrantQuery:
    @strawberry.field(
        description="Brand HQ or platform: a bulk grant by its job's id.",
        extensions=[Authorize(policy.READ_JOB)],
    )
    async def bulk_grant(
        self, info: Info, job_id: Annotated[relay.GlobalID, strawberry.argument(description="The job's id.")]
    ) -> BulkGrant:
        grant = await service.get_bulk_grant(info.context.principal, decode_id(job_id, "Job", "jobId"))
        return BulkGrant.of(grant)

    @strawberry.field(
        description="Brand HQ or platform: how many of a brand's members a segment matches now.",
        extensions=[Authorize(policy.COUNT_SEGMENT)],
    )
    async def segment_size(
        self,
        info: Info,
        brand_id: Annotated[relay.GlobalID, strawberry.argument(description="The brand.")],
        segment: Annotated[SegmentInput, strawberry.argument(description="Which members.")],
    ) -> BigInt:
        size = await service.segment_size(
            info.context.principal, decode_id(brand_id, "Brand", "brandId"), segment.fields()
        )
        return BigInt(size)


@strawberry.input(description="A grant or deduction of points to a segment of a brand's members.")
class StartBulkGrantInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand.")
    name: str = strawberry.field(description="A name for the job (at most 200 characters).")
    reason: str = strawberry.field(
        description="Why (at most 200 characters); each member's transaction carries it."
    )
    points: int = strawberry.field(
        description=(
            "Points per member: positive grants; negative deducts (a member short of them is a failed item)."
        )
    )
    segment: SegmentInput = strawberry.field(
        default_factory=SegmentInput, description=f"Which members: {SEGMENT_HELP}"
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.type(description="The bulk grant's job, queued for a worker.")
class StartBulkGrantPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was started, if so.")
    bulk_grant: BulkGrant | None = strawberry.field(default=None, description="The grant and its job.")
    created: bool | None = strawberry.field(
        default=None, description="False when this idempotency key started it before (the same grant)."
    )


@strawberry.type
class GrantMutation:
    @strawberry.mutation(
        description=(
            "Brand HQ: grant (or deduct) points to every member of a segment, as a background job."
            " A worker fixes the set of members when it starts, then grants each exactly once, even"
            " across restarts. Follow it with job(id) or the jobProgress subscription."
        ),
        extensions=[Authorize(policy.START_BULK_GRANT)],
    )
    async def start_bulk_grant(self, info: Info, input: StartBulkGrantInput) -> StartBulkGrantPayload:
        async def run() -> dict:
            grant, created = await service.start_bulk_grant(
                info.context.principal,
                info.context.services.broker,
                decode_id(input.brand_id, "Brand", "brandId"),
                name=input.name,
                reason=input.reason,
                points=input.points,
                segment=input.segment.fields(),
                idempotency_key=input.idempotency_key,
            )
            return {"bulk_grant": BulkGrant.of(grant), "created": created}

        return await mutate(StartBulkGrantPayload, run)

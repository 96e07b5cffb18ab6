"""Lapsed members (HQ), the win-back grant to them, and a campaign's response."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import strawberry
from strawberry import relay

from hub import policy
from hub.resolvers import lapsed
from hub.resolvers.pagination import decode_cursor, encode_cursor
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, Connection, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.grants import BulkGrant
from hub.schema.jobs import Job
from hub.schema.nodes import AFTER, FIRST, Membership, Store

IDEMPOTENCY_HELP = (
    "Your unique id for this write. Retrying with the same key returns the first result; the same key"
    " with a different request fails with IDEMPOTENCY_CONFLICT."
)


@strawberry.type(description="A member who bought before but not for the asked number of days.")
class LapsedMember:
    tier: str = strawberry.field(description="The membership's tier.")
    last_purchase_at: datetime = strawberry.field(description="When the member last bought.")
    balance: BigInt = strawberry.field(description="Available points now.")
    expiring_points: BigInt = strawberry.field(
        description="Of the available points, those expiring within expiringWithinDays."
    )
    membership_pk: strawberry.Private[int]
    store_pk: strawberry.Private[int | None]

    @classmethod
    def of(cls, m: lapsed.LapsedMember) -> LapsedMember:
        return cls(
            tier=m.tier,
            last_purchase_at=m.last_purchase_at,
            balance=BigInt(m.balance),
            expiring_points=BigInt(m.expiring),
            membership_pk=m.membership_id,
            store_pk=m.last_purchase_store_id,
        )

    @strawberry.field(description="The membership.")
    async def membership(self, info: Info) -> Membership:
        return Membership.from_model(await info.context.memberships.load(self.membership_pk))

    @strawberry.field(description="Where the member last bought.")
    async def last_purchase_store(self, info: Info) -> Store | None:
        if self.store_pk is None:
            return None
        return Store.from_model(await info.context.stores.load(self.store_pk))


@strawberry.type(description="How many members of a bulk grant (a win-back) bought within a window after it.")
class WinBackResponse:
    job: Job = strawberry.field(description="The bulk grant's job.")
    snapshot_at: datetime | None = strawberry.field(
        description="When the grant's members were fixed (the window starts then); null until planned."
    )
    within_days: int = strawberry.field(description="The window after the snapshot, in days.")
    recipients: BigInt = strawberry.field(description="Members the grant reached (its fixed set).")
    purchased: BigInt = strawberry.field(description="Of them, those who bought within the window.")
    rate_basis_points: int = strawberry.field(
        description="purchased / recipients in basis points, rounded down (1234 = 12.34 %)."
    )


@strawberry.input(description="HQ grants points to every member lapsed for `days` days (a bulk grant).")
class StartWinBackInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand (HQ: its own).")
    days: int = strawberry.field(
        description="Lapsed for this many days: no purchase since the start of that day."
    )
    points: int = strawberry.field(description="Points per member (more than 0).")
    reason: str = strawberry.field(
        description="Why (at most 200 characters); each member's transaction carries it."
    )
    name: str = strawberry.field(
        default="", description="A name for the job; default: Win-back: lapsed N days."
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.type(description="The result of starting a win-back campaign.")
class StartWinBackPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    bulk_grant: BulkGrant | None = strawberry.field(default=None, description="The bulk grant job.")
    created: bool | None = strawberry.field(
        default=None, description="false when the same request (idempotency key) started it before."
    )
    lapsed_since: date | None = strawberry.field(
        default=None, description="Members whose last purchase was before this brand-local day."
    )


@strawberry.type
class LapsedQuery:
    @strawberry.field(
        description=(
            "Brand HQ: members who bought before but not for `days` days (no purchase since the start of"
            " that brand-local day), by membership, with their last store, tier, balance and expiring points."
        ),
        extensions=[Authorize(policy.LIST_LAPSED)],
    )
    async def lapsed_members(
        self,
        info: Info,
        brand_id: Annotated[relay.GlobalID, strawberry.argument(description="The brand.")],
        days: Annotated[int, strawberry.argument(description="Lapsed for this many days (1-3660).")] = 90,
        expiring_within_days: Annotated[
            int, strawberry.argument(description="The window of expiringPoints (1-3660 days).")
        ] = 30,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[LapsedMember]:
        result = await lapsed.lapsed_members(
            info.context.principal,
            decode_id(brand_id, "Brand", "brandId"),
            days,
            first,
            decode_cursor(after) if after else None,
            info.context.max_page_size,
            expiring_within_days,
        )
        return Connection.build(
            [LapsedMember.of(m) for m in result.items],
            [encode_cursor(m.membership_id) for m in result.items],
            result.has_next_page,
            result.has_previous_page,
        )

    @strawberry.field(
        description="Brand HQ: of a bulk grant's members (a win-back), how many bought within withinDays.",
        extensions=[Authorize(policy.READ_WIN_BACK_RESPONSE)],
    )
    async def win_back_response(
        self,
        info: Info,
        job_id: Annotated[relay.GlobalID, strawberry.argument(description="The bulk grant's job.")],
        within_days: Annotated[int, strawberry.argument(description="The window in days (1-3660).")] = 30,
    ) -> WinBackResponse:
        response = await lapsed.campaign_response(
            info.context.principal, decode_id(job_id, "Job", "jobId"), within_days
        )
        return WinBackResponse(
            job=Job.from_model(response.job),
            snapshot_at=response.snapshot_at,
            within_days=response.within_days,
            recipients=BigInt(response.recipients),
            purchased=BigInt(response.purchased),
            rate_basis_points=response.rate_basis_points,
        )


@strawberry.type
class LapsedMutation:
    @strawberry.mutation(
        description="Brand HQ: grant points to every member lapsed for `days` days, as a bulk grant job.",
        extensions=[Authorize(policy.START_WIN_BACK)],
    )
    async def start_win_back(self, info: Info, input: StartWinBackInput) -> StartWinBackPayload:
        async def run() -> dict:
            grant, created, since = await lapsed.start_win_back(
                info.context.principal,
                info.context.services.broker,
                decode_id(input.brand_id, "Brand", "brandId"),
                input.days,
                input.points,
                input.reason,
                input.idempotency_key,
                input.name,
            )
            return {
                "bulk_grant": BulkGrant.of(grant),
                "created": created,
                "lapsed_since": since,
            }

        return await mutate(StartWinBackPayload, run)

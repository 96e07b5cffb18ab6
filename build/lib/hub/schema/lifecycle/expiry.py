"""Expiry: brand policies, what expires soon (member view, HQ list) and the pointsExpiring notices."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import policy
from hub.domain import ExpiryKind, ExpiryPeriod
from hub.resolvers import expiring, expiry_redate
from hub.resolvers import expiry_policy as policies
from hub.resolvers.pagination import decode_cursor, encode_cursor
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, Connection, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.jobs import Job
from hub.schema.nodes import AFTER, FIRST, Membership


@strawberry.enum(name="ExpiryKind", description="How an expiry policy dates the points earned under it.")
class ExpiryKindEnum(Enum):
    NEVER = strawberry.enum_value("never", description="Points never expire.")
    DAYS = strawberry.enum_value(
        "days", description="Through the end of the brand-local day `count` days after earning."
    )
    MONTHS = strawberry.enum_value(
        "months",
        description=(
            "Through the end of the brand-local day `count` calendar months after earning (the month's"
            " last day when it has no such day)."
        ),
    )
    PERIOD_END = strawberry.enum_value(
        "period_end",
        description=(
            "At the end of the `period` that is `count` periods after the one of earning (year, 1: points"
            " earned in 2026 expire at the end of 2027)."
        ),
    )
    CLEARING_DATE = strawberry.enum_value(
        "clearing_date",
        description="All at `clearingAt` (a one-off program-wide clearing); points earned after it never.",
    )


@strawberry.enum(name="ExpiryPeriod", description="A calendar period in the brand's time zone.")
class ExpiryPeriodEnum(Enum):
    MONTH = strawberry.enum_value("month", description="A calendar month.")
    QUARTER = strawberry.enum_value("quarter", description="January-March, April-June, ...")
    YEAR = strawberry.enum_value("year", description="A calendar year.")


@strawberry.type(
    description="One version of a brand's expiry policy: it dates the points earned while in force."
)
class ExpiryPolicy:
    version: int = strawberry.field(description="1, 2, 3, ... each change adds one.")
    kind: ExpiryKindEnum = strawberry.field(description="How points earned under it are dated.")
    count: int = strawberry.field(description="N of DAYS, MONTHS and PERIOD_END; 0 otherwise.")
    period: ExpiryPeriodEnum | None = strawberry.field(description="PERIOD_END: the calendar period.")
    clearing_at: datetime | None = strawberry.field(description="CLEARING_DATE: when everything expires.")
    effective_from: datetime = strawberry.field(description="Points earned from then on are dated by it.")
    reason: str = strawberry.field(description="Why HQ set it.")

    @classmethod
    def from_model(cls, m: Any) -> ExpiryPolicy:
        return cls(
            version=m.version,
            kind=ExpiryKindEnum[ExpiryKind(m.kind).name],
            count=m.count,
            period=ExpiryPeriodEnum[ExpiryPeriod(m.period).name] if m.period else None,
            clearing_at=m.clearing_at,
            effective_from=m.effective_from,
            reason=m.reason,
        )


@strawberry.input(description="A new expiry policy for a brand, for points earned from now on.")
class SetExpiryPolicyInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand (HQ: its own).")
    kind: ExpiryKindEnum = strawberry.field(description="How points earned from now on are dated.")
    count: int = strawberry.field(
        default=0, description="DAYS: 1-3660; MONTHS: 1-120; PERIOD_END: 0-120 (0: the earning's own period)."
    )
    period: ExpiryPeriodEnum | None = strawberry.field(default=None, description="PERIOD_END only.")
    clearing_at: datetime | None = strawberry.field(
        default=None, description="CLEARING_DATE only: a future time with its UTC offset."
    )
    reason: str = strawberry.field(default="", description="Why, for the record (at most 200 characters).")


@strawberry.type(description="The result of setting an expiry policy.")
class ExpiryPolicyPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    policy: ExpiryPolicy | None = strawberry.field(default=None, description="The new version.")


@strawberry.input(description="Date the points members hold by the expiry policy in force now.")
class RedateOpenPointsInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand (HQ: its own).")
    reason: str = strawberry.field(description="Why, for the record (at most 200 characters).")
    idempotency_key: str = strawberry.field(
        description=(
            "Your unique id for this request. Retrying with the same key returns the same job; the same"
            " key with a different request fails with IDEMPOTENCY_CONFLICT."
        )
    )


@strawberry.type(description="The result of starting a re-dating of open points.")
class RedateOpenPointsPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    job: Job | None = strawberry.field(default=None, description="The lifecycle.redate job: its progress.")
    created: bool | None = strawberry.field(
        default=None, description="false when the same request (idempotency key) started it before."
    )


@strawberry.type(description="Points of a membership that expire at one date.")
class PointsExpiry:
    points: BigInt = strawberry.field(description="How many points expire then (what is left of them now).")
    expires_at: datetime = strawberry.field(description="When they stop being spendable.")


def expiring_list(items: list[expiring.Expiring]) -> list[PointsExpiry]:
    return [PointsExpiry(points=BigInt(e.points), expires_at=e.expires_at) for e in items]


@strawberry.type(description="A membership with points expiring within the asked window.")
class ExpiringMembership:
    points: BigInt = strawberry.field(description="Points expiring within the window, in total.")
    first_expires_at: datetime = strawberry.field(description="The soonest expiry date within it.")
    membership_pk: strawberry.Private[int]

    @strawberry.field(description="The membership.")
    async def membership(self, info: Info) -> Membership:
        return Membership.from_model(await info.context.memberships.load(self.membership_pk))


@strawberry.type(
    description="A notice that some of a membership's points expire soon (sent once per lead time)."
)
class PointsExpiringNotice:
    notice_id: int = strawberry.field(description="The notice's number; pass it as afterNoticeId to resume.")
    membership_id: relay.GlobalID = strawberry.field(description="The membership whose points expire.")
    points: BigInt = strawberry.field(description="Points expiring at that date when the notice was made.")
    expires_at: datetime = strawberry.field(description="When they stop being spendable.")
    lead_days: int = strawberry.field(description="The brand's lead time this notice is for (30, 7, ...).")

    @classmethod
    def of(cls, n: expiring.PointsExpiring) -> PointsExpiringNotice:
        return cls(
            notice_id=n.notice_id,
            membership_id=relay.GlobalID("Membership", str(n.membership_id)),
            points=BigInt(n.points),
            expires_at=n.expires_at,
            lead_days=n.lead_days,
        )


@strawberry.type
class ExpiryQuery:
    @strawberry.field(
        description="A brand's expiry policy in force now; null when none was set (points never expire).",
        extensions=[Authorize(policy.READ_EXPIRY_POLICY)],
    )
    async def expiry_policy(
        self,
        info: Info,
        brand_id: Annotated[relay.GlobalID, strawberry.argument(description="The brand.")],
    ) -> ExpiryPolicy | None:
        found = await policies.current_policy(info.context.principal, decode_id(brand_id, "Brand", "brandId"))
        return ExpiryPolicy.from_model(found) if found else None

    @strawberry.field(
        description=(
            "Brand HQ: the brand's memberships with points expiring in the next withinDays days, by"
            " membership (for the brand's own SMS or app pushes)."
        ),
        extensions=[Authorize(policy.LIST_EXPIRING)],
    )
    async def memberships_with_expiring_points(
        self,
        info: Info,
        brand_id: Annotated[relay.GlobalID, strawberry.argument(description="The brand.")],
        within_days: Annotated[
            int, strawberry.argument(description="The window: 1-3660 days from now.")
        ] = 30,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[ExpiringMembership]:
        result = await expiring.memberships_expiring(
            info.context.principal,
            decode_id(brand_id, "Brand", "brandId"),
            within_days,
            first,
            decode_cursor(after) if after else None,
            info.context.max_page_size,
        )
        return Connection.build(
            [
                ExpiringMembership(
                    points=BigInt(m.points),
                    first_expires_at=m.first_expires_at,
                    membership_pk=m.membership_id,
                )
                for m in result.items
            ],
            [encode_cursor(m.membership_id) for m in result.items],
            result.has_next_page,
            result.has_previous_page,
        )


@strawberry.type
class ExpiryMutation:
    @strawberry.mutation(
        description=(
            "Brand HQ: set the expiry policy for points earned from now on (points already held keep"
            " their dates)."
        ),
        extensions=[Authorize(policy.SET_EXPIRY_POLICY)],
    )
    async def set_expiry_policy(self, info: Info, input: SetExpiryPolicyInput) -> ExpiryPolicyPayload:
        async def run() -> dict:
            created = await policies.set_expiry_policy(
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
                ExpiryKind[input.kind.name],
                count=input.count,
                period=ExpiryPeriod[input.period.name] if input.period else None,
                clearing_at=input.clearing_at,
                reason=input.reason,
            )
            return {"policy": ExpiryPolicy.from_model(created)}

        return await mutate(ExpiryPolicyPayload, run)

    @strawberry.mutation(
        description=(
            "Brand HQ: date the points members already hold by the policy in force now (a job; each"
            " changed membership gets one `redate` transaction listing old and new dates)."
        ),
        extensions=[Authorize(policy.REDATE_POINTS)],
    )
    async def redate_open_points(self, info: Info, input: RedateOpenPointsInput) -> RedateOpenPointsPayload:
        async def run() -> dict:
            job, created = await expiry_redate.start_redate(
                info.context.principal,
                info.context.services.broker,
                decode_id(input.brand_id, "Brand", "brandId"),
                input.reason,
                input.idempotency_key,
            )
            return {"job": Job.from_model(job), "created": created}

        return await mutate(RedateOpenPointsPayload, run)


@strawberry.type
class ExpirySubscription:
    @strawberry.subscription(
        description=(
            "Expiring-points notices of a membership, once per expiry date and lead time (the brand's"
            " lead times, default 30 and 7 days). Pass afterNoticeId to receive the notices after it"
            " first."
        ),
        extensions=[Authorize(policy.WATCH_EXPIRING)],
    )
    async def points_expiring(
        self,
        info: Info,
        membership_id: Annotated[relay.GlobalID, strawberry.argument(description="The membership to watch.")],
        after_notice_id: Annotated[
            int | None, strawberry.argument(description="The last notice seen (its noticeId).")
        ] = None,
    ) -> AsyncGenerator[PointsExpiringNotice, None]:
        membership = await expiring.watched_membership(
            info.context.principal, decode_id(membership_id, "Membership", "membershipId")
        )
        async for notice in expiring.notice_events(
            info.context.services.broker, [membership.id], after_notice_id
        ):
            yield PointsExpiringNotice.of(notice)

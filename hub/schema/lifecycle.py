"""Points lifecycle: expiry policies (HQ), and later expiring-soon views, transfers and lapsed members."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import policy
from hub.domain import ExpiryKind, ExpiryPeriod
from hub.resolvers import expiry_policy as policies
from hub.schema.authorize import Authorize
from hub.schema.common import UserError, decode_id, mutate
from hub.schema.context import Info


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


@strawberry.type
class LifecycleQuery:
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


@strawberry.type
class LifecycleMutation:
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

"""Referral: a membership's code, and where its own referral stands."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from hub import policy
from hub.resolvers import referrals as service
from hub.schema.authorize import Authorize
from hub.schema.common import UserError, decode_id, mutate
from hub.schema.context import Info


@strawberry.enum(name="ReferralStatus", description="Where a referral stands.")
class ReferralStatusEnum(Enum):
    PENDING = strawberry.enum_value("pending", description="Signed up; no qualifying purchase yet.")
    REWARDED = strawberry.enum_value(
        "rewarded", description="The first qualifying purchase was made and rewarded."
    )


@strawberry.type(description="How a membership was referred (the referrer's identity is not shown).")
class Referral:
    status: ReferralStatusEnum = strawberry.field(description="Pending or rewarded.")
    created_at: datetime = strawberry.field(description="When the member signed up with the code.")
    rewarded_at: datetime | None = strawberry.field(description="When the rewards were posted.")
    referrer_capped: bool = strawberry.field(
        description="The referrer had reached the brand's maximum and got no reward for this one."
    )

    @classmethod
    def from_model(cls, m: Any) -> Referral:
        return cls(
            status=ReferralStatusEnum(str(m.status)),
            created_at=m.created_at,
            rewarded_at=m.rewarded_at,
            referrer_capped=m.referrer_capped,
        )


@strawberry.input(description="Whose referral code to get.")
class IssueReferralCodeInput:
    membership_id: strawberry.ID = strawberry.field(description="The membership (a member: its own).")


@strawberry.type(description="The result of issueReferralCode.")
class IssueReferralCodePayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    code: str | None = strawberry.field(
        default=None, description="The code a new member gives at sign-up (enrollMember referralCode)."
    )


@strawberry.type
class ReferralMutation:
    @strawberry.mutation(
        description="A membership's referral code, made on first request (the same one afterwards).",
        extensions=[Authorize(policy.ISSUE_REFERRAL_CODE)],
    )
    async def issue_referral_code(
        self, info: Info, input: IssueReferralCodeInput
    ) -> IssueReferralCodePayload:
        async def run() -> dict:
            row = await service.issue_code(
                info.context.principal, decode_id(input.membership_id, "Membership", "membershipId")
            )
            return {"code": row.code}

        return await mutate(IssueReferralCodePayload, run)

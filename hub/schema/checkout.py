"""Checkout: the brand's spending rules (points at checkout, top-up bonus tiers, refund clawback)."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry

from hub import policy
from hub.domain import ClawbackPolicy
from hub.resolvers import spending_rules as rules_service
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, UserError, decode_id, mutate
from hub.schema.context import Info


@strawberry.enum(name="ClawbackPolicy", description="What a refund does with earned points already spent.")
class ClawbackPolicyEnum(Enum):
    WITHIN_BALANCE = strawberry.enum_value(
        "within_balance",
        description=(
            "Default: take back the refund's share of earned points as far as the member has them;"
            " the rest is forgiven (recorded on the refund)."
        ),
    )
    DEDUCT_FROM_CASH = strawberry.enum_value(
        "deduct_from_cash",
        description=(
            "As WITHIN_BALANCE, and the value of what could not be taken back is deducted from the"
            " cash paid back."
        ),
    )


@strawberry.type(description="A stored-value top-up bonus tier: topping up at least minFen gives its bonus.")
class TopUpTier:
    min_fen: BigInt = strawberry.field(description="The smallest top-up (fen) that reaches the tier.")
    bonus_fen: BigInt = strawberry.field(description="Bonus stored value given (fen).")
    bonus_points: BigInt = strawberry.field(description="Bonus points given.")


@strawberry.input(description="A stored-value top-up bonus tier; the highest tier a top-up reaches applies.")
class TopUpTierInput:
    min_fen: BigInt = strawberry.field(description="The smallest top-up (fen) that reaches the tier.")
    bonus_fen: BigInt = strawberry.field(default=BigInt(0), description="Bonus value (fen), at most minFen.")
    bonus_points: BigInt = strawberry.field(default=BigInt(0), description="Bonus points.")


@strawberry.type(description="How members spend at a brand: points at checkout, top-up bonuses, refunds.")
class SpendingRules:
    points_min_bill_fen: BigInt = strawberry.field(description="Bills below this (fen) cannot use points.")
    points_max_share_basis_points: int = strawberry.field(
        description=(
            "At most this share of what is left to pay after a coupon may be paid with points (5000 = 50 %)."
        )
    )
    points_step_fen: int = strawberry.field(
        description="Points pay in whole steps of this many fen (100: whole yuan)."
    )
    excluded_categories: list[str] = strawberry.field(
        description="Bill line categories points may not pay for."
    )
    top_up_tiers: list[TopUpTier] = strawberry.field(
        description="Stored-value top-up bonus tiers, lowest first."
    )
    refund_clawback: ClawbackPolicyEnum = strawberry.field(
        description="What a refund does with earned points the member already spent."
    )

    @classmethod
    def from_model(cls, m: Any) -> SpendingRules:
        return cls(
            points_min_bill_fen=BigInt(m.points_min_bill_fen),
            points_max_share_basis_points=m.points_max_share_bp,
            points_step_fen=m.points_step_fen,
            excluded_categories=list(m.excluded_categories),
            top_up_tiers=[
                TopUpTier(
                    min_fen=BigInt(t.min_fen),
                    bonus_fen=BigInt(t.bonus_fen),
                    bonus_points=BigInt(t.bonus_points),
                )
                for t in rules_service.tiers_of(m)
            ],
            refund_clawback=ClawbackPolicyEnum[ClawbackPolicy(m.refund_clawback).name],
        )


async def rules_field(brand_id: int) -> SpendingRules:
    return SpendingRules.from_model(await rules_service.rules_for(brand_id))


@strawberry.input(description="Change a brand's spending rules; fields left out keep their value.")
class UpdateSpendingRulesInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand (HQ: its own).")
    points_min_bill_fen: BigInt | None = strawberry.field(
        default=None, description="Bills below this (fen) cannot use points (0: any bill)."
    )
    points_max_share_basis_points: int | None = strawberry.field(
        default=None, description="0-10000: the most of a bill points may pay (5000 = 50 %)."
    )
    points_step_fen: int | None = strawberry.field(
        default=None, description="1-100000: points pay in whole steps of this many fen (100: whole yuan)."
    )
    excluded_categories: list[str] | None = strawberry.field(
        default=None, description="Bill line categories points may not pay for (at most 50)."
    )
    top_up_tiers: list[TopUpTierInput] | None = strawberry.field(
        default=None, description="The top-up bonus tiers (at most 20; an empty list: no bonus)."
    )
    refund_clawback: ClawbackPolicyEnum | None = strawberry.field(
        default=None, description="What a refund does with earned points already spent."
    )


@strawberry.type(description="The result of changing a brand's spending rules.")
class SpendingRulesPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    rules: SpendingRules | None = strawberry.field(default=None, description="The rules now.")


@strawberry.type
class CheckoutMutation:
    @strawberry.mutation(
        description=(
            "Brand HQ: set how points pay at checkout, the top-up bonus tiers and the refund clawback."
        ),
        extensions=[Authorize(policy.SET_SPENDING_RULES)],
    )
    async def update_spending_rules(
        self, info: Info, input: UpdateSpendingRulesInput
    ) -> SpendingRulesPayload:
        async def run() -> dict[str, Any]:
            tiers = None
            if input.top_up_tiers is not None:
                tiers = [
                    rules_service.TopUpTier(t.min_fen, t.bonus_fen, t.bonus_points)
                    for t in input.top_up_tiers
                ]
            rules = await rules_service.update_rules(
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
                points_min_bill_fen=input.points_min_bill_fen,
                points_max_share_bp=input.points_max_share_basis_points,
                points_step_fen=input.points_step_fen,
                excluded_categories=input.excluded_categories,
                top_up_tiers=tiers,
                refund_clawback=None
                if input.refund_clawback is None
                else ClawbackPolicy[input.refund_clawback.name],
            )
            return {"rules": SpendingRules.from_model(rules)}

        return await mutate(SpendingRulesPayload, run)

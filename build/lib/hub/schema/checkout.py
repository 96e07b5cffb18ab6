"""Checkout: the brand's spending rules, quotes, checkout with points, stored value and a coupon, and
refunds of a checkout or purchase."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import policy
from hub.domain import ClawbackPolicy
from hub.resolvers import checkout as service
from hub.resolvers import refunds as refund_service
from hub.resolvers import spending_rules as rules_service
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.coupons import Coupon
from hub.schema.earning import PurchaseLineInput
from hub.schema.nodes import LedgerTransaction, Membership
from hub.schema.wallets import IDEMPOTENCY_HELP, StoredValueWallet


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


def _lines(lines: list[PurchaseLineInput] | None) -> list[tuple[int, str, str, str]] | None:
    return [(x.amount_fen, x.category, x.margin_class, x.sku) for x in lines] if lines else None


@strawberry.type(description="What the brand's rules let points pay on a bill. Nothing is held.")
class CheckoutQuote:
    membership: Membership = strawberry.field(description="Whose points and wallet.")
    bill_fen: BigInt = strawberry.field(description="The bill.")
    coupon_off_fen: BigInt = strawberry.field(description="What the coupon takes off (0 without one).")
    eligible_fen: BigInt = strawberry.field(
        description="What points may pay for: the bill after the coupon, without excluded categories."
    )
    max_points_fen: BigInt = strawberry.field(
        description="The most of the bill points may pay (fen): share, steps and the member's points applied."
    )
    max_points: BigInt = strawberry.field(description="The points that costs.")
    points_available: BigInt = strawberry.field(description="The member's available points now.")
    explanation: str = strawberry.field(description="Which rule set the limit, in words.")
    wallet: StoredValueWallet = strawberry.field(description="The member's stored value now.")
    cash_fen_at_most_points: BigInt = strawberry.field(
        description="What is left to pay in cash or stored value when points pay the most they may."
    )


@strawberry.type
class CheckoutQuery:
    @strawberry.field(
        description=(
            "Store or brand HQ: the most points usable on a bill and what they pay, by the brand's rules"
            " (point value, minimum bill, maximum share, steps, excluded categories). Nothing is held."
        ),
        extensions=[Authorize(policy.QUOTE_CHECKOUT)],
    )
    async def quote_checkout(
        self,
        info: Info,
        membership_id: Annotated[relay.GlobalID, strawberry.argument(description="The membership.")],
        bill_fen: Annotated[BigInt, strawberry.argument(description="The bill in fen.")],
        lines: Annotated[
            list[PurchaseLineInput] | None,
            strawberry.argument(description="The bill's lines (categories decide what points may pay)."),
        ] = None,
        coupon_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="A coupon of the member to apply first.")
        ] = None,
    ) -> CheckoutQuote:
        q = await service.quote(
            info.context.principal,
            decode_id(membership_id, "Membership", "membershipId"),
            bill_fen,
            _lines(lines),
            decode_id(coupon_id, "Coupon", "couponId") if coupon_id is not None else None,
        )
        return CheckoutQuote(
            membership=Membership.from_model(q.membership),
            bill_fen=BigInt(q.bill_fen),
            coupon_off_fen=BigInt(q.coupon_off_fen),
            eligible_fen=BigInt(q.limit.eligible_fen),
            max_points_fen=BigInt(q.limit.max_fen),
            max_points=BigInt(q.limit.max_points),
            points_available=BigInt(q.available_points),
            explanation=q.limit.reason,
            wallet=StoredValueWallet.of(q.wallet),
            cash_fen_at_most_points=BigInt(q.bill_fen - q.coupon_off_fen - q.limit.max_fen),
        )


@strawberry.input(
    description="A bill settled at a store: coupon, points, stored value, and the rest in cash."
)
class CheckoutInput:
    membership_id: strawberry.ID = strawberry.field(
        description="The member's membership of the store's brand."
    )
    bill_fen: BigInt = strawberry.field(description="The whole bill in fen.")
    lines: list[PurchaseLineInput] | None = strawberry.field(
        default=None,
        description="The bill's lines (categories, SKUs): coupons, points and earning read them.",
    )
    coupon_id: strawberry.ID | None = strawberry.field(
        default=None, description="A coupon of the member to use."
    )
    points_fen: BigInt = strawberry.field(
        default=BigInt(0),
        description="What points pay, in fen: whole steps, at most quoteCheckout's maximum.",
    )
    stored_value_fen: BigInt = strawberry.field(
        default=BigInt(0), description="What stored value pays, in fen."
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.type(description="The result of a checkout: one ledger transaction.")
class CheckoutPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    transaction: LedgerTransaction | None = strawberry.field(default=None, description="The checkout.")
    membership: Membership | None = strawberry.field(default=None, description="Who paid.")
    coupon_off_fen: BigInt | None = strawberry.field(default=None, description="What the coupon took off.")
    points_used: BigInt | None = strawberry.field(default=None, description="Points spent.")
    cash_fen: BigInt | None = strawberry.field(default=None, description="What is left to pay in cash.")
    points_earned: BigInt | None = strawberry.field(
        default=None, description="Points the cash part earned (paying with points earns none)."
    )
    points_balance: BigInt | None = strawberry.field(
        default=None, description="Available points right after."
    )
    wallet: StoredValueWallet | None = strawberry.field(
        default=None, description="The stored value right after (a retry: as it is now)."
    )


@strawberry.input(description="Refund (part of) a checkout or a recorded purchase.")
class RefundCheckoutInput:
    transaction_id: strawberry.ID = strawberry.field(
        description="The checkout's (or purchase's) transaction."
    )
    amount_fen: BigInt | None = strawberry.field(
        default=None,
        description="How much of what was paid (the bill less the coupon) to refund; null: all that is left.",
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.type(description="The result of a refund: a new transaction referencing the original.")
class RefundCheckoutPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    transaction: LedgerTransaction | None = strawberry.field(default=None, description="The refund.")
    membership: Membership | None = strawberry.field(default=None, description="Whose purchase.")
    refunded_fen: BigInt | None = strawberry.field(
        default=None, description="How much of the bill was refunded."
    )
    cash_fen: BigInt | None = strawberry.field(default=None, description="Cash to pay back at the till.")
    points_returned: BigInt | None = strawberry.field(default=None, description="Points used that came back.")
    points_clawed_back: BigInt | None = strawberry.field(
        default=None, description="Earned points taken back (by the brand's clawback policy)."
    )
    stored_value_fen: BigInt | None = strawberry.field(
        default=None, description="Stored value that came back."
    )
    coupons: list[Coupon] | None = strawberry.field(
        default=None, description="The coupon given back (only when the whole bill is refunded)."
    )
    points_balance: BigInt | None = strawberry.field(
        default=None, description="Available points right after."
    )
    wallet: StoredValueWallet | None = strawberry.field(
        default=None, description="The member's stored value now."
    )


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

    @strawberry.mutation(
        description=(
            "Store: settle a bill with a coupon, points and stored value, the rest in cash; the cash part"
            " earns points. One ledger transaction: all of it or nothing."
        ),
        extensions=[Authorize(policy.CHECKOUT)],
    )
    async def checkout(self, info: Info, input: CheckoutInput) -> CheckoutPayload:
        async def run() -> dict[str, Any]:
            result = await service.checkout(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.membership_id, "Membership", "membershipId"),
                input.bill_fen,
                input.idempotency_key,
                lines=_lines(input.lines),
                points_fen=input.points_fen,
                stored_value_fen=input.stored_value_fen,
                coupon_id=decode_id(input.coupon_id, "Coupon", "couponId") if input.coupon_id else None,
                broker=info.context.services.broker,
            )
            return {
                "transaction": LedgerTransaction.from_model(result.transaction),
                "membership": Membership.from_model(result.membership),
                "coupon_off_fen": BigInt(result.coupon_off_fen),
                "points_used": BigInt(result.points_used),
                "cash_fen": BigInt(result.cash_fen),
                "points_earned": BigInt(result.points_earned),
                "points_balance": BigInt(result.points_balance),
                "wallet": StoredValueWallet.of(result.wallet),
            }

        return await mutate(CheckoutPayload, run)

    @strawberry.mutation(
        description=(
            "Store or brand HQ: refund (part of) a checkout or purchase; what was used comes back in"
            " proportion, earned points are taken back by the brand's clawback policy."
        ),
        extensions=[Authorize(policy.REFUND_CHECKOUT)],
    )
    async def refund_checkout(self, info: Info, input: RefundCheckoutInput) -> RefundCheckoutPayload:
        async def run() -> dict[str, Any]:
            result = await refund_service.refund(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.transaction_id, "LedgerTransaction", "transactionId"),
                input.amount_fen,
                input.idempotency_key,
            )
            return {
                "transaction": LedgerTransaction.from_model(result.transaction),
                "membership": Membership.from_model(result.membership),
                "refunded_fen": BigInt(result.refunded_fen),
                "cash_fen": BigInt(result.cash_fen),
                "points_returned": BigInt(result.points_returned),
                "points_clawed_back": BigInt(result.points_clawed_back),
                "stored_value_fen": BigInt(result.stored_value_fen),
                "coupons": [Coupon.from_view(c) for c in result.coupons],
                "points_balance": BigInt(result.points_balance),
                "wallet": StoredValueWallet.of(result.wallet),
            }

        return await mutate(RefundCheckoutPayload, run)

"""Stored value (储值): the wallet, top-ups and their refunds, points into stored value."""

from __future__ import annotations

from typing import Any

import strawberry

from hub import policy
from hub.resolvers import wallets as service
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import LedgerTransaction, Membership

IDEMPOTENCY_HELP = (
    "Your unique id for this write. Retrying with the same key returns the first result; the same key"
    " with a different request fails with IDEMPOTENCY_CONFLICT."
)


@strawberry.type(description="A membership's stored value in fen: money paid in, and value the brand gave.")
class StoredValueWallet:
    principal_fen: BigInt = strawberry.field(
        description="Paid in at top-ups and not spent: the only part a top-up refund pays back."
    )
    bonus_fen: BigInt = strawberry.field(
        description="Given by the brand (top-up bonus tiers, converted points); never paid back in cash."
    )
    total_fen: BigInt = strawberry.field(description="What the member can spend: principal plus bonus.")

    @classmethod
    def of(cls, w: service.Wallet) -> StoredValueWallet:
        return cls(
            principal_fen=BigInt(w.principal_fen),
            bonus_fen=BigInt(w.bonus_fen),
            total_fen=BigInt(w.total_fen),
        )


async def wallet_field(info: Info, membership_id: int) -> StoredValueWallet:
    return StoredValueWallet.of(await info.context.loaders.load(service.wallets_of, membership_id))


@strawberry.input(description="Money a member paid at a store (outside the hub), as stored value.")
class TopUpStoredValueInput:
    membership_id: strawberry.ID = strawberry.field(description="The member's membership of the brand.")
    amount_fen: BigInt = strawberry.field(description="What was paid, in fen (at least 1).")
    payment_reference: str = strawberry.field(
        description="The payment's reference (till receipt, payment provider id); once per brand."
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.type(description="The result of a top-up.")
class TopUpStoredValuePayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    transaction: LedgerTransaction | None = strawberry.field(default=None, description="The top-up.")
    membership: Membership | None = strawberry.field(default=None, description="Whose wallet.")
    wallet: StoredValueWallet | None = strawberry.field(
        default=None, description="The wallet right after the top-up (a retry: as it is now)."
    )
    bonus_fen: BigInt | None = strawberry.field(
        default=None, description="Bonus value of the brand's tier the amount reached."
    )
    bonus_points: BigInt | None = strawberry.field(
        default=None, description="Bonus points of the brand's tier the amount reached."
    )


@strawberry.input(description="Pay back a top-up's unspent principal (the cash goes back outside the hub).")
class RefundTopUpInput:
    top_up_id: strawberry.ID = strawberry.field(description="The top-up's transaction.")
    amount_fen: BigInt | None = strawberry.field(
        default=None, description="How much principal to pay back; null: all that can be."
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.type(description="The result of a top-up refund.")
class RefundTopUpPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    transaction: LedgerTransaction | None = strawberry.field(default=None, description="The refund.")
    membership: Membership | None = strawberry.field(default=None, description="Whose wallet.")
    wallet: StoredValueWallet | None = strawberry.field(default=None, description="The wallet now.")
    refunded_fen: BigInt | None = strawberry.field(
        default=None, description="Principal to pay back to the member (in cash, outside the hub)."
    )
    bonus_fen: BigInt | None = strawberry.field(
        default=None, description="The top-up's bonus value taken back in the same proportion."
    )
    bonus_points: BigInt | None = strawberry.field(
        default=None, description="The top-up's bonus points taken back in the same proportion."
    )


@strawberry.input(description="Turn points into stored value at the brand's point value.")
class ConvertPointsToStoredValueInput:
    membership_id: strawberry.ID = strawberry.field(description="The member's membership of the brand.")
    points: BigInt = strawberry.field(description="Points to convert: a number worth whole fen.")
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.type(description="The result of converting points into stored value.")
class ConvertPointsToStoredValuePayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    transaction: LedgerTransaction | None = strawberry.field(default=None, description="The conversion.")
    membership: Membership | None = strawberry.field(default=None, description="Whose points and wallet.")
    wallet: StoredValueWallet | None = strawberry.field(
        default=None, description="The wallet right after (a retry: as it is now)."
    )
    points: BigInt | None = strawberry.field(default=None, description="Points converted.")
    fen: BigInt | None = strawberry.field(default=None, description="Bonus stored value credited (fen).")
    points_balance: BigInt | None = strawberry.field(
        default=None, description="Available points right after the conversion."
    )


@strawberry.type
class WalletMutation:
    @strawberry.mutation(
        description=(
            "Store: record a stored-value top-up with the brand's bonus tier (one ledger transaction)."
        ),
        extensions=[Authorize(policy.TOP_UP)],
    )
    async def top_up_stored_value(self, info: Info, input: TopUpStoredValueInput) -> TopUpStoredValuePayload:
        async def run() -> dict[str, Any]:
            result = await service.top_up(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.membership_id, "Membership", "membershipId"),
                input.amount_fen,
                input.payment_reference,
                input.idempotency_key,
            )
            return {
                "transaction": LedgerTransaction.from_model(result.transaction),
                "membership": Membership.from_model(result.membership),
                "wallet": StoredValueWallet.of(result.wallet),
                "bonus_fen": BigInt(result.bonus_fen),
                "bonus_points": BigInt(result.bonus_points),
            }

        return await mutate(TopUpStoredValuePayload, run)

    @strawberry.mutation(
        description="Brand HQ or store: pay back a top-up's unspent principal (its bonus goes back too).",
        extensions=[Authorize(policy.REFUND_TOP_UP)],
    )
    async def refund_top_up(self, info: Info, input: RefundTopUpInput) -> RefundTopUpPayload:
        async def run() -> dict[str, Any]:
            result = await service.refund_top_up(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.top_up_id, "LedgerTransaction", "topUpId"),
                input.amount_fen,
                input.idempotency_key,
            )
            return {
                "transaction": LedgerTransaction.from_model(result.transaction),
                "membership": Membership.from_model(result.membership),
                "wallet": StoredValueWallet.of(result.wallet),
                "refunded_fen": BigInt(result.refunded_fen),
                "bonus_fen": BigInt(result.bonus_fen),
                "bonus_points": BigInt(result.bonus_points),
            }

        return await mutate(RefundTopUpPayload, run)

    @strawberry.mutation(
        description="Store or member (own token): turn points into stored value, exactly once per key.",
        extensions=[Authorize(policy.CONVERT_POINTS)],
    )
    async def convert_points_to_stored_value(
        self, info: Info, input: ConvertPointsToStoredValueInput
    ) -> ConvertPointsToStoredValuePayload:
        async def run() -> dict[str, Any]:
            result = await service.convert_points(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.membership_id, "Membership", "membershipId"),
                input.points,
                input.idempotency_key,
            )
            return {
                "transaction": LedgerTransaction.from_model(result.transaction),
                "membership": Membership.from_model(result.membership),
                "wallet": StoredValueWallet.of(result.wallet),
                "points": BigInt(result.points),
                "fen": BigInt(result.fen),
                "points_balance": BigInt(result.points_balance),
            }

        return await mutate(ConvertPointsToStoredValuePayload, run)

"""Points: earn on a purchase, redeem, adjust."""

from __future__ import annotations

import strawberry
from strawberry import relay

from hub.resolvers import points as service
from hub.resolvers.points import PointsResult
from hub.schema.common import BigInt, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import LedgerTransaction, Membership

IDEMPOTENCY_HELP = (
    "Your unique id for this write (a receipt number). Retrying with the same key returns the first"
    " result; the same key with a different request fails with IDEMPOTENCY_CONFLICT."
)


@strawberry.input
class RecordPurchaseInput:
    membership_id: relay.GlobalID
    amount_fen: int = strawberry.field(description="The amount paid, in fen (¥1 = 100).")
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.input
class RedeemPointsInput:
    membership_id: relay.GlobalID
    points: int
    reason: str
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.input
class AdjustPointsInput:
    membership_id: relay.GlobalID
    points: int = strawberry.field(description="Positive to add, negative to remove.")
    reason: str
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.type(description="The result of a points write.")
class PointsPayload:
    user_errors: list[UserError]
    transaction: LedgerTransaction | None = None
    membership: Membership | None = None
    points: BigInt | None = strawberry.field(
        default=None, description="The signed change to the member's points."
    )
    balance: BigInt | None = strawberry.field(
        default=None, description="Available points right after this transaction."
    )


def _fields(result: PointsResult) -> dict:
    return {
        "transaction": LedgerTransaction.from_model(result.transaction),
        "membership": Membership.from_model(result.membership),
        "points": result.points,
        "balance": result.balance,
    }


@strawberry.type
class PointsMutation:
    @strawberry.mutation(description="Store: record a purchase; it earns at the brand's rate.")
    async def record_purchase(self, info: Info, input: RecordPurchaseInput) -> PointsPayload:
        async def run() -> dict:
            return _fields(
                await service.record_purchase(
                    info.context.principal,
                    decode_id(input.membership_id, "Membership", "membershipId"),
                    input.amount_fen,
                    input.idempotency_key,
                )
            )

        return await mutate(PointsPayload, run)

    @strawberry.mutation(description="Store: spend points (burned; the catalog comes later).")
    async def redeem_points(self, info: Info, input: RedeemPointsInput) -> PointsPayload:
        async def run() -> dict:
            return _fields(
                await service.redeem_points(
                    info.context.principal,
                    decode_id(input.membership_id, "Membership", "membershipId"),
                    input.points,
                    input.reason,
                    input.idempotency_key,
                )
            )

        return await mutate(PointsPayload, run)

    @strawberry.mutation(description="Brand HQ: add or remove points with a reason.")
    async def adjust_points(self, info: Info, input: AdjustPointsInput) -> PointsPayload:
        async def run() -> dict:
            return _fields(
                await service.adjust_points(
                    info.context.principal,
                    decode_id(input.membership_id, "Membership", "membershipId"),
                    input.points,
                    input.reason,
                    input.idempotency_key,
                )
            )

        return await mutate(PointsPayload, run)

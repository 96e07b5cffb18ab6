"""Points: redeem and adjust (earning on a purchase is in hub/schema/earning.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import strawberry

from hub import policy
from hub.resolvers import points as service
from hub.resolvers.points import PointsResult
from hub.schema.authorize import Authorize
from hub.schema.common import USER_ERRORS, BigInt, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import LedgerTransaction, Membership

IDEMPOTENCY_HELP = (
    "Your unique id for this write (a receipt number). Retrying with the same key returns the first"
    " result; the same key with a different request fails with IDEMPOTENCY_CONFLICT."
)


@strawberry.input(description="Points a member spends at a store.")
class RedeemPointsInput:
    membership_id: strawberry.ID = strawberry.field(description="The membership whose points are spent.")
    points: int = strawberry.field(description="How many points (positive).")
    reason: str = strawberry.field(description="Why, as the transaction will record it.")
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.input(description="A manual correction of a member's points.")
class AdjustPointsInput:
    membership_id: strawberry.ID = strawberry.field(description="The membership to correct.")
    points: int = strawberry.field(description="Positive to add, negative to remove.")
    reason: str = strawberry.field(description="Why, as the transaction will record it.")
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.type(description="The result of a points write.")
class PointsPayload:
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)
    transaction: LedgerTransaction | None = strawberry.field(
        default=None, description="The transaction written (or the first one, on a replay)."
    )
    membership: Membership | None = strawberry.field(default=None, description="The membership written to.")
    points: BigInt | None = strawberry.field(
        default=None, description="The signed change to the member's points."
    )
    balance: BigInt | None = strawberry.field(
        default=None, description="Available points right after this transaction."
    )


async def _points_write(
    info: Info,
    write: Callable[..., Awaitable[PointsResult]],
    membership_id: strawberry.ID,
    *args: object,
) -> PointsPayload:
    """Decode the membership, run one points write, and shape its payload or its userErrors."""

    async def run() -> dict:
        result = await write(
            info.context.services.ledger,
            info.context.principal,
            decode_id(membership_id, "Membership", "membershipId"),
            *args,
        )
        return {
            "transaction": LedgerTransaction.from_model(result.transaction),
            "membership": Membership.from_model(result.membership),
            "points": result.points,
            "balance": result.balance,
        }

    return await mutate(PointsPayload, run)


@strawberry.type
class PointsMutation:
    @strawberry.mutation(
        description="Store: spend points (burned; the catalog comes later).",
        extensions=[Authorize(policy.REDEEM_POINTS)],
    )
    async def redeem_points(self, info: Info, input: RedeemPointsInput) -> PointsPayload:
        return await _points_write(
            info,
            service.redeem_points,
            input.membership_id,
            input.points,
            input.reason,
            input.idempotency_key,
        )

    @strawberry.mutation(
        description="Brand HQ: add or remove points with a reason.",
        extensions=[Authorize(policy.ADJUST_POINTS)],
    )
    async def adjust_points(self, info: Info, input: AdjustPointsInput) -> PointsPayload:
        return await _points_write(
            info,
            service.adjust_points,
            input.membership_id,
            input.points,
            input.reason,
            input.idempotency_key,
        )

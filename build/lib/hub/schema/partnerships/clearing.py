"""Franchise clearing in the schema: the brand's funding choice, clearing now, per-store statements."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry import relay

from hub import policy
from hub.domain import ClearingFunding
from hub.resolvers import clearing as service
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, UserError, decode_id, mutate
from hub.schema.context import Info


@strawberry.enum(
    name="ClearingFunding", description="Who funds points one store issued and another accepted."
)
class ClearingFundingEnum(Enum):
    ISSUING_STORE = strawberry.enum_value(
        "issuing_store", description="The store that issued them pays the store that accepted them."
    )
    HQ = strawberry.enum_value("hq", description="The brand's HQ pays the store that accepted them.")
    SPLIT = strawberry.enum_value(
        "split", description="The issuing store pays issuerShareBasisPoints of it, HQ the rest."
    )


@strawberry.type(description="A brand's franchise clearing rule.")
class ClearingPolicy:
    funding: ClearingFundingEnum = strawberry.field(description="Who funds.")
    issuer_share_basis_points: int = strawberry.field(
        description="The issuing store's share (10000 = all of it, 0 = none)."
    )


@strawberry.type(description="One store's clearing over a time range, at the brand's point value.")
class StoreClearing:
    store_id: relay.GlobalID = strawberry.field(description="The store.")
    points_issued: BigInt = strawberry.field(description="Points it issued that other stores accepted.")
    points_accepted: BigInt = strawberry.field(description="Points other stores issued that it accepted.")
    owes_fen: BigInt = strawberry.field(description="What it owes for the points it issued (its share).")
    owed_fen: BigInt = strawberry.field(description="What it is owed for the points it accepted.")
    net_fen: BigInt = strawberry.field(description="owedFen - owesFen: positive, the store is paid.")


@strawberry.input(description="Choose who funds points across the brand's stores.")
class SetClearingPolicyInput:
    brand_id: strawberry.ID = strawberry.field(description="Your brand.")
    funding: ClearingFundingEnum = strawberry.field(description="Who funds.")
    issuer_share_basis_points: int = strawberry.field(
        default=5_000, description="SPLIT only: the issuing store's share, 1-9999 basis points."
    )


@strawberry.type(description="The result of setting a clearing policy.")
class ClearingPolicyPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    policy: ClearingPolicy | None = strawberry.field(default=None, description="The policy in force now.")


@strawberry.input(
    description="Clear the brand's pending redemptions now (the worker does it every ten minutes)."
)
class RunClearingInput:
    brand_id: strawberry.ID = strawberry.field(description="Your brand.")


@strawberry.type(description="The result of clearing now.")
class RunClearingPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    cleared: int | None = strawberry.field(default=None, description="Redemptions cleared by this call.")


@strawberry.type
class ClearingQuery:
    @strawberry.field(
        description=(
            "Per store, the franchise clearing entries made in [since, until): HQ sees every store (or"
            " one), a store its own."
        ),
        extensions=[Authorize(policy.READ_CLEARING)],
    )
    async def clearing_statement(
        self,
        info: Info,
        brand_id: Annotated[relay.GlobalID, strawberry.argument(description="The brand.")],
        since: Annotated[datetime | None, strawberry.argument(description="From then (inclusive).")] = None,
        until: Annotated[datetime | None, strawberry.argument(description="Until then (exclusive).")] = None,
        store_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="HQ: only this store.")
        ] = None,
    ) -> list[StoreClearing]:
        rows = await service.statement(
            info.context.principal,
            decode_id(brand_id, "Brand", "brandId"),
            since,
            until,
            decode_id(store_id, "Store", "storeId") if store_id else None,
        )
        return [
            StoreClearing(
                store_id=relay.GlobalID("Store", str(r.store_id)),
                points_issued=BigInt(r.points_issued),
                points_accepted=BigInt(r.points_accepted),
                owes_fen=BigInt(r.owes_fen),
                owed_fen=BigInt(r.owed_fen),
                net_fen=BigInt(r.net_fen),
            )
            for r in rows
        ]


@strawberry.type
class ClearingMutation:
    @strawberry.mutation(
        description="Brand HQ: choose who funds points one store issued and another accepted.",
        extensions=[Authorize(policy.CONFIGURE_CLEARING)],
    )
    async def set_clearing_policy(self, info: Info, input: SetClearingPolicyInput) -> ClearingPolicyPayload:
        async def run() -> dict:
            row = await service.set_policy(
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
                ClearingFunding[input.funding.name],
                input.issuer_share_basis_points,
            )
            return {
                "policy": ClearingPolicy(
                    funding=ClearingFundingEnum[ClearingFunding(row.funding).name],
                    issuer_share_basis_points=row.issuer_share_bp,
                )
            }

        return await mutate(ClearingPolicyPayload, run)

    @strawberry.mutation(
        description="Brand HQ: clear pending redemptions now (each exactly once).",
        extensions=[Authorize(policy.CONFIGURE_CLEARING)],
    )
    async def run_clearing(self, info: Info, input: RunClearingInput) -> RunClearingPayload:
        async def run() -> dict:
            cleared = await service.run_now(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
            )
            return {"cleared": cleared}

        return await mutate(RunClearingPayload, run)

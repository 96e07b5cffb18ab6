"""Lifecycle settings (notice lead times, transfer limits), member transfers and HQ merges."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import policy
from hub.resolvers import lifecycle_settings, transfers
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import LedgerTransaction, Membership

IDEMPOTENCY_HELP = (
    "Your unique id for this write. Retrying with the same key returns the first result; the same key"
    " with a different request fails with IDEMPOTENCY_CONFLICT."
)


@strawberry.type(description="A brand's expiring-soon notice lead times and member transfer limits.")
class LifecycleSettings:
    notice_lead_days: list[int] = strawberry.field(
        description="Days before an expiry date at which members are told (pointsExpiring); default 30 and 7."
    )
    transfers_enabled: bool = strawberry.field(description="Whether members may give points to each other.")
    transfer_min: BigInt = strawberry.field(description="The fewest points one transfer may move.")
    transfer_max_per_day: BigInt | None = strawberry.field(
        description="The most points one member may give per brand-local day; null: no maximum."
    )

    @classmethod
    def of(cls, s: lifecycle_settings.Settings) -> LifecycleSettings:
        return cls(
            notice_lead_days=list(s.notice_lead_days),
            transfers_enabled=s.transfers_enabled,
            transfer_min=BigInt(s.transfer_min),
            transfer_max_per_day=None if s.transfer_max_per_day is None else BigInt(s.transfer_max_per_day),
        )


@strawberry.input(description="Change a brand's lifecycle settings; fields left out keep their value.")
class UpdateLifecycleSettingsInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand (HQ: its own).")
    notice_lead_days: list[int] | None = strawberry.field(
        default=None, description="Up to 5 lead times, each 1-365 days."
    )
    transfers_enabled: bool | None = strawberry.field(default=None, description="Allow member transfers.")
    transfer_min: BigInt | None = strawberry.field(
        default=None, description="The fewest points per transfer."
    )
    transfer_max_per_day: BigInt | None = strawberry.field(
        default=strawberry.UNSET, description="The most points per member and day; null: no maximum."
    )


@strawberry.type(description="The result of changing a brand's lifecycle settings.")
class LifecycleSettingsPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    settings: LifecycleSettings | None = strawberry.field(default=None, description="The settings now.")


@strawberry.input(description="A member gives points to another member of the same brand.")
class TransferPointsInput:
    membership_id: strawberry.ID = strawberry.field(description="The giver's membership (the caller's own).")
    to_phone: str = strawberry.field(description="The receiver's phone number; a member of the same brand.")
    points: BigInt = strawberry.field(description="How many available points to give.")
    message: str = strawberry.field(default="", description="A note for the record (at most 200 characters).")
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.input(description="HQ moves all of one membership's available points to another one.")
class MergePointsInput:
    from_membership_id: strawberry.ID = strawberry.field(description="The membership giving up its points.")
    to_membership_id: strawberry.ID = strawberry.field(description="The membership receiving them.")
    reason: str = strawberry.field(description="Why (a phone number changed owner, ...), for the record.")
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.type(description="The result of a transfer or a merge: one ledger transaction.")
class TransferPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    transaction: LedgerTransaction | None = strawberry.field(default=None, description="The transfer.")
    membership: Membership | None = strawberry.field(default=None, description="The giving membership.")
    points: BigInt | None = strawberry.field(default=None, description="The points moved.")
    balance: BigInt | None = strawberry.field(
        default=None, description="The giver's available points right after the transfer."
    )


def _transferred(result: transfers.TransferResult) -> dict[str, Any]:
    return {
        "transaction": LedgerTransaction.from_model(result.transaction),
        "membership": Membership.from_model(result.membership),
        "points": BigInt(result.points),
        "balance": BigInt(result.balance),
    }


@strawberry.type
class TransferQuery:
    @strawberry.field(
        description="A brand's notice lead times and member transfer limits.",
        extensions=[Authorize(policy.READ_LIFECYCLE_SETTINGS)],
    )
    async def lifecycle_settings(
        self,
        info: Info,
        brand_id: Annotated[relay.GlobalID, strawberry.argument(description="The brand.")],
    ) -> LifecycleSettings:
        brand = decode_id(brand_id, "Brand", "brandId")
        return LifecycleSettings.of(await lifecycle_settings.read_settings(info.context.principal, brand))


@strawberry.type
class TransferMutation:
    @strawberry.mutation(
        description="Brand HQ: set notice lead times and member transfer limits.",
        extensions=[Authorize(policy.UPDATE_LIFECYCLE_SETTINGS)],
    )
    async def update_lifecycle_settings(
        self, info: Info, input: UpdateLifecycleSettingsInput
    ) -> LifecycleSettingsPayload:
        async def run() -> dict:
            changes: dict[str, Any] = {}
            if input.transfer_max_per_day is not strawberry.UNSET:
                changes["transfer_max_per_day"] = input.transfer_max_per_day
            updated = await lifecycle_settings.update_settings(
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
                notice_lead_days=input.notice_lead_days,
                transfers_enabled=input.transfers_enabled,
                transfer_min=input.transfer_min,
                **changes,
            )
            return {"settings": LifecycleSettings.of(updated)}

        return await mutate(LifecycleSettingsPayload, run)

    @strawberry.mutation(
        description=(
            "Member (own token): give available points to another member of the brand, found by phone."
            " The receiver's points keep their expiry dates. Limits: lifecycleSettings."
        ),
        extensions=[Authorize(policy.TRANSFER_POINTS)],
    )
    async def transfer_points(self, info: Info, input: TransferPointsInput) -> TransferPayload:
        async def run() -> dict:
            result = await transfers.transfer_points(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.membership_id, "Membership", "membershipId"),
                input.to_phone,
                input.points,
                input.idempotency_key,
                input.message,
            )
            return _transferred(result)

        return await mutate(TransferPayload, run)

    @strawberry.mutation(
        description=(
            "Brand HQ: move all available points of one membership to another of the brand (a phone"
            " number that changed owner), each with its expiry date."
        ),
        extensions=[Authorize(policy.MERGE_POINTS)],
    )
    async def merge_points(self, info: Info, input: MergePointsInput) -> TransferPayload:
        async def run() -> dict:
            result = await transfers.merge_points(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.from_membership_id, "Membership", "fromMembershipId"),
                decode_id(input.to_membership_id, "Membership", "toMembershipId"),
                input.reason,
                input.idempotency_key,
            )
            return _transferred(result)

        return await mutate(TransferPayload, run)

"""Redemption at a partner's store: the member's one-time code, the redemption, its void.

What the offer brand sees of the member is the pseudonymous id only: no type here reaches the points
brand's membership, phone, balance or history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from hub import policy
from hub.resolvers import partner_redemptions as service
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import _resolve_each
from hub.schema.partnerships.lifecycle import PartnerOffer, Partnership

IDEMPOTENCY_HELP = (
    "Your unique id for this write (a receipt number). Retrying with the same key returns the first"
    " result; the same key with a different request fails with IDEMPOTENCY_CONFLICT."
)


@strawberry.type(description="A member's one-time consent to redeem points at a partner's store.")
class RedemptionCode:
    code: str = strawberry.field(description="Ten digits the clerk types in.")
    qr_payload: str = strawberry.field(description="The same code for a QR code the store scans.")
    expires_at: datetime = strawberry.field(description="Unusable after this (about two minutes).")


@strawberry.type(
    description=(
        "One partner redemption (positive amounts) or the void of one (negative amounts). The member"
        " appears only as a pseudonymous id, stable within the partnership."
    )
)
class PartnerRedemption(relay.Node):
    id: relay.NodeID[int]
    version: int = strawberry.field(description="The version of the terms it used.")
    member_pseudonym: str = strawberry.field(
        description=(
            "The member, as the offer brand knows it: the same within this partnership, nothing outside."
        )
    )
    points: BigInt = strawberry.field(description="Points of the points brand spent (a void: given back).")
    settlement_fen: BigInt = strawberry.field(
        description="What the points brand owes the offer brand for it (a void: negative)."
    )
    store_id: relay.GlobalID = strawberry.field(description="The offer brand's store that redeemed.")
    occurred_at: datetime = strawberry.field(description="When its ledger transaction committed.")
    voids: relay.GlobalID | None = strawberry.field(description="A void: the redemption it voids.")
    statement_id: relay.GlobalID = strawberry.field(description="The settlement statement it is on.")
    partnership_pk: strawberry.Private[int]
    offer_pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: Any) -> PartnerRedemption:
        return cls(
            id=m.id,
            version=m.version,
            member_pseudonym=m.member_pseudonym,
            points=BigInt(m.points),
            settlement_fen=BigInt(m.fen),
            store_id=relay.GlobalID("Store", str(m.store_id)),
            occurred_at=m.occurred_at,
            voids=None if m.voids_id is None else relay.GlobalID("PartnerRedemption", str(m.voids_id)),
            statement_id=relay.GlobalID("PartnershipStatement", str(m.statement_id)),
            partnership_pk=m.partnership_id,
            offer_pk=m.offer_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[PartnerRedemption | None]:
        async def fetch(pk: int) -> PartnerRedemption:
            _, line = await service.get_line(info.context.principal, policy.READ_STATEMENTS, pk, "id")
            return cls.from_model(line)

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="The partnership it belongs to.")
    async def partnership(self, info: Info) -> Partnership:
        return Partnership.from_model(
            await info.context.loaders.load(service.partnerships_by_id, self.partnership_pk)
        )

    @strawberry.field(description="The offer redeemed, as the version it used had it.")
    async def offer(self, info: Info) -> PartnerOffer:
        return PartnerOffer.from_model(await info.context.loaders.load(service.offers_by_id, self.offer_pk))


@strawberry.input(description="Ask for a one-time code to show at a partner's store.")
class CreateRedemptionCodeInput:
    membership_id: strawberry.ID = strawberry.field(description="Your membership whose points you spend.")


@strawberry.type(description="The result of asking for a redemption code.")
class RedemptionCodePayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    code: RedemptionCode | None = strawberry.field(default=None, description="The code.")


@strawberry.input(description="Redeem a partner offer for the member whose code the store was shown.")
class RedeemPartnerOfferInput:
    code: str = strawberry.field(description="The member's code (its ten digits, or the QR payload).")
    offer_id: strawberry.ID = strawberry.field(
        description="The offer (of any version: the one in force is used)."
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.input(
    description="Void a redemption the store made (the service did not happen), within the window."
)
class VoidPartnerRedemptionInput:
    redemption_id: strawberry.ID = strawberry.field(description="The redemption.")
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.type(description="The result of a partner redemption or its void.")
class PartnerRedemptionPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    redemption: PartnerRedemption | None = strawberry.field(
        default=None, description="The redemption (or the void) written, or the first one on a retry."
    )
    coupon_ids: list[relay.GlobalID] | None = strawberry.field(
        default=None,
        description="COUPON offers: the coupons issued to the member's membership of the offer brand.",
    )
    replayed: bool | None = strawberry.field(
        default=None, description="true: a retry answered with the first result."
    )


def _redemption(result: service.Redemption) -> dict[str, Any]:
    return {
        "redemption": PartnerRedemption.from_model(result.line),
        "coupon_ids": [relay.GlobalID("Coupon", str(c)) for c in result.coupon_ids],
        "replayed": result.replayed,
    }


@strawberry.type
class RedemptionMutation:
    @strawberry.mutation(
        description="Member (own token): a one-time code to redeem points at a partner's store.",
        extensions=[Authorize(policy.CREATE_REDEMPTION_CODE)],
    )
    async def create_redemption_code(
        self, info: Info, input: CreateRedemptionCodeInput
    ) -> RedemptionCodePayload:
        async def run() -> dict:
            code = await service.create_code(
                info.context.principal, decode_id(input.membership_id, "Membership", "membershipId")
            )
            return {
                "code": RedemptionCode(
                    code=code.code, qr_payload=service.qr_payload(code), expires_at=code.expires_at
                )
            }

        return await mutate(RedemptionCodePayload, run)

    @strawberry.mutation(
        description=(
            "Store of the offer brand: redeem an offer with the member's code (one ledger transaction:"
            " points, settlement, what the offer gives)."
        ),
        extensions=[Authorize(policy.REDEEM_PARTNER_OFFER)],
    )
    async def redeem_partner_offer(
        self, info: Info, input: RedeemPartnerOfferInput
    ) -> PartnerRedemptionPayload:
        async def run() -> dict:
            result = await service.redeem(
                info.context.services.ledger,
                info.context.services.broker,
                info.context.principal,
                input.code,
                decode_id(input.offer_id, "PartnerOffer", "offerId"),
                input.idempotency_key,
            )
            return _redemption(result)

        return await mutate(PartnerRedemptionPayload, run)

    @strawberry.mutation(
        description="The redeeming store: void a redemption within 30 minutes; every leg is reversed once.",
        extensions=[Authorize(policy.VOID_PARTNER_REDEMPTION)],
    )
    async def void_partner_redemption(
        self, info: Info, input: VoidPartnerRedemptionInput
    ) -> PartnerRedemptionPayload:
        async def run() -> dict:
            result = await service.void(
                info.context.services.ledger,
                info.context.services.broker,
                info.context.principal,
                decode_id(input.redemption_id, "PartnerRedemption", "redemptionId"),
                input.idempotency_key,
            )
            return _redemption(result)

        return await mutate(PartnerRedemptionPayload, run)

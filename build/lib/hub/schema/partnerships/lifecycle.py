"""Partnerships: proposals, versioned terms, suspension and end (both HQs; stores read)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import policy
from hub.domain import PartnerOfferKind, PartnershipStatus, SettlementPeriod, TermsStatus
from hub.resolvers import partnerships as service
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, Connection, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import AFTER, FIRST, Brand, _resolve_each, connection


@strawberry.enum(name="PartnershipStatus", description="Where a partnership stands.")
class PartnershipStatusEnum(Enum):
    PROPOSED = strawberry.enum_value("proposed", description="Waiting for the other HQ to accept version 1.")
    DECLINED = strawberry.enum_value("declined", description="The other HQ declined it (final).")
    ACTIVE = strawberry.enum_value("active", description="Terms in force: redemptions are accepted.")
    SUSPENDED = strawberry.enum_value("suspended", description="Paused: nothing is redeemed until resumed.")
    ENDED = strawberry.enum_value(
        "ended", description="Final: nothing new is redeemed; coupons bought stay valid to their expiry."
    )


@strawberry.enum(name="PartnershipTermsStatus", description="Where a version of the terms stands.")
class TermsStatusEnum(Enum):
    PROPOSED = strawberry.enum_value("proposed", description="Accepted by the proposing side only.")
    IN_FORCE = strawberry.enum_value("in_force", description="Accepted by both: new redemptions use it.")
    SUPERSEDED = strawberry.enum_value("superseded", description="A later version replaced it.")
    DECLINED = strawberry.enum_value("declined", description="The other side declined it.")


@strawberry.enum(name="SettlementPeriod", description="How long one settlement statement runs.")
class SettlementPeriodEnum(Enum):
    DAY = strawberry.enum_value("day", description="One day in the offer brand's time zone.")
    MONTH = strawberry.enum_value("month", description="One calendar month in the offer brand's time zone.")


@strawberry.enum(
    name="PartnerOfferKind", description="What a partner offer gives at the offer brand's store."
)
class PartnerOfferKindEnum(Enum):
    SERVICE = strawberry.enum_value("service", description="A service done now (a wash): settlement only.")
    COUPON = strawberry.enum_value(
        "coupon", description="A coupon of the offer brand, issued to the member's membership there."
    )
    PASS = strawberry.enum_value(
        "pass", description="A service pass of the offer brand, issued to the member's membership there."
    )


@strawberry.type(description="Something the offer brand sells for the points brand's points.")
class PartnerOffer(relay.Node):
    id: relay.NodeID[int]
    code: str = strawberry.field(description="Names the offer across versions of the terms.")
    name: str = strawberry.field(description="What members and clerks see.")
    kind: PartnerOfferKindEnum = strawberry.field(description="What it gives.")
    points_price: BigInt = strawberry.field(description="Its price in the points brand's points.")
    settlement_fen: BigInt = strawberry.field(
        description="What the points brand pays the offer brand per redemption (fen)."
    )
    coupon_template_id: relay.GlobalID | None = strawberry.field(
        description="COUPON: the offer brand's coupon template issued."
    )
    pass_product_id: relay.GlobalID | None = strawberry.field(
        description="PASS: the offer brand's pass product issued."
    )

    @classmethod
    def from_model(cls, m: Any) -> PartnerOffer:
        return cls(
            id=m.id,
            code=m.code,
            name=m.name,
            kind=PartnerOfferKindEnum[PartnerOfferKind(m.kind).name],
            points_price=BigInt(m.points_price),
            settlement_fen=BigInt(m.settlement_fen),
            coupon_template_id=None
            if m.coupon_template_id is None
            else relay.GlobalID("CouponTemplate", str(m.coupon_template_id)),
            pass_product_id=None
            if m.pass_product_id is None
            else relay.GlobalID("PassProduct", str(m.pass_product_id)),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[PartnerOffer | None]:
        async def fetch(pk: int) -> PartnerOffer:
            _, offer = await service.get_offer(info.context.principal, policy.READ_PARTNERSHIP, pk, "id")
            return cls.from_model(offer)

        return await _resolve_each(node_ids, fetch, required)


@strawberry.type(description="One version of a partnership's terms.")
class PartnershipTerms:
    version: int = strawberry.field(description="1, 2, ... in the order proposed.")
    status: TermsStatusEnum = strawberry.field(description="Where this version stands.")
    proposed_by: relay.GlobalID = strawberry.field(description="The brand that proposed it.")
    accepted_by_points_brand: bool = strawberry.field(description="The points brand's HQ accepted it.")
    accepted_by_offer_brand: bool = strawberry.field(description="The offer brand's HQ accepted it.")
    store_ids: list[relay.GlobalID] = strawberry.field(
        description="Participating stores of the offer brand; empty: all of them."
    )
    valid_from: datetime | None = strawberry.field(description="Redemptions are accepted from then.")
    valid_until: datetime | None = strawberry.field(description="Redemptions are accepted until then.")
    limit_per_day: int | None = strawberry.field(
        description="Redemptions one member may make per day (offer brand's time zone); null: no limit."
    )
    limit_per_month: int | None = strawberry.field(
        description="Redemptions one member may make per calendar month; null: no limit."
    )
    budget_count: BigInt | None = strawberry.field(
        description="Redemptions the partnership may have in total (voids give back); null: no limit."
    )
    budget_fen: BigInt | None = strawberry.field(
        description="Settlement fen the partnership may run up in total (voids give back); null: no limit."
    )
    period: SettlementPeriodEnum = strawberry.field(description="How long each settlement statement runs.")
    accepted_at: datetime | None = strawberry.field(description="When it came into force.")
    pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: Any) -> PartnershipTerms:
        return cls(
            version=m.version,
            status=TermsStatusEnum[TermsStatus(m.status).name],
            proposed_by=relay.GlobalID("Brand", str(m.proposed_by_id)),
            accepted_by_points_brand=m.accepted_by_points,
            accepted_by_offer_brand=m.accepted_by_offer,
            store_ids=[relay.GlobalID("Store", str(s)) for s in m.store_ids],
            valid_from=m.valid_from,
            valid_until=m.valid_until,
            limit_per_day=m.limit_per_day,
            limit_per_month=m.limit_per_month,
            budget_count=m.budget_count,
            budget_fen=m.budget_fen,
            period=SettlementPeriodEnum[SettlementPeriod(m.period).name],
            accepted_at=m.accepted_at,
            pk=m.id,
        )

    @strawberry.field(description="The offers of this version.")
    async def offers(self, info: Info) -> list[PartnerOffer]:
        return [PartnerOffer.from_model(o) for o in await info.context.loaders.load(service.offers, self.pk)]


@strawberry.type(
    description=(
        "An agreement under which the points brand's members spend its points on the offer brand's"
        " offers, and the points brand owes the offer brand for each. Only the two brands see it."
    )
)
class Partnership(relay.Node):
    id: relay.NodeID[int]
    name: str = strawberry.field(description="What both HQs call it.")
    status: PartnershipStatusEnum = strawberry.field(description="Where it stands.")
    current_version: int | None = strawberry.field(description="The version in force; null before the first.")
    created_at: datetime = strawberry.field(description="When it was proposed.")
    points_brand_pk: strawberry.Private[int]
    offer_brand_pk: strawberry.Private[int]
    proposed_by_pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: Any) -> Partnership:
        return cls(
            id=m.id,
            name=m.name,
            status=PartnershipStatusEnum[PartnershipStatus(m.status).name],
            current_version=m.current_version,
            created_at=m.created_at,
            points_brand_pk=m.points_brand_id,
            offer_brand_pk=m.offer_brand_id,
            proposed_by_pk=m.proposed_by_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Partnership | None]:
        async def fetch(pk: int) -> Partnership:
            return cls.from_model(await service.get(info.context.principal, pk))

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="The brand whose members spend its points.")
    async def points_brand(self, info: Info) -> Brand:
        return Brand.from_model(await info.context.brands.load(self.points_brand_pk))

    @strawberry.field(description="The brand whose offers they buy, at its stores.")
    async def offer_brand(self, info: Info) -> Brand:
        return Brand.from_model(await info.context.brands.load(self.offer_brand_pk))

    @strawberry.field(description="The brand whose HQ proposed it.")
    async def proposed_by(self, info: Info) -> Brand:
        return Brand.from_model(await info.context.brands.load(self.proposed_by_pk))

    @strawberry.field(description="Every version of the terms, oldest first.")
    async def versions(self, info: Info) -> list[PartnershipTerms]:
        return [
            PartnershipTerms.from_model(t) for t in await info.context.loaders.load(service.versions, self.id)
        ]

    @strawberry.field(description="The version in force; null before the first is accepted.")
    async def terms(self, info: Info) -> PartnershipTerms | None:
        for t in await info.context.loaders.load(service.versions, self.id):
            if t.version == self.current_version:
                return PartnershipTerms.from_model(t)
        return None


# --- mutations --------------------------------------------------------------------------------------


@strawberry.input(description="One offer of a version of the terms.")
class PartnerOfferInput:
    code: str = strawberry.field(
        description="Names the offer across versions (lower-case letters, digits, _ . -)."
    )
    name: str = strawberry.field(description="What members and clerks see.")
    kind: PartnerOfferKindEnum = strawberry.field(description="What it gives.")
    points_price: BigInt = strawberry.field(description="Its price in the points brand's points.")
    settlement_fen: BigInt = strawberry.field(description="What the points brand pays per redemption (fen).")
    coupon_template_id: strawberry.ID | None = strawberry.field(
        default=None, description="COUPON: the offer brand's coupon template to issue."
    )
    pass_product_id: strawberry.ID | None = strawberry.field(
        default=None, description="PASS: the offer brand's pass product to issue."
    )


@strawberry.input(description="A version of a partnership's terms.")
class PartnershipTermsInput:
    offers: list[PartnerOfferInput] = strawberry.field(description="1 to 50 offers, each with its own code.")
    store_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Participating stores of the offer brand; empty: all."
    )
    valid_from: datetime | None = strawberry.field(default=None, description="Redemptions from then.")
    valid_until: datetime | None = strawberry.field(default=None, description="Redemptions until then.")
    limit_per_day: int | None = strawberry.field(default=None, description="Per member per day; null: none.")
    limit_per_month: int | None = strawberry.field(
        default=None, description="Per member per month; null: none."
    )
    budget_count: BigInt | None = strawberry.field(
        default=None, description="Redemptions in total; null: none."
    )
    budget_fen: BigInt | None = strawberry.field(
        default=None, description="Settlement fen in total; null: none."
    )
    period: SettlementPeriodEnum = strawberry.field(
        default=SettlementPeriodEnum.MONTH, description="How long each settlement statement runs."
    )


@strawberry.input(
    description="Propose a partnership between your brand and another (version 1 of its terms)."
)
class ProposePartnershipInput:
    name: str = strawberry.field(description="What both HQs call it.")
    points_brand_id: strawberry.ID = strawberry.field(description="Whose members spend their points.")
    offer_brand_id: strawberry.ID = strawberry.field(description="Whose offers they buy. One side is yours.")
    terms: PartnershipTermsInput = strawberry.field(description="Version 1 of the terms (you accept it so).")


@strawberry.input(description="Accept or decline a proposed version of the terms (the other side's).")
class RespondToPartnershipTermsInput:
    partnership_id: strawberry.ID = strawberry.field(description="The partnership.")
    version: int = strawberry.field(description="The proposed version.")
    accept: bool = strawberry.field(description="true: it comes into force; false: declined.")


@strawberry.input(
    description="Propose a new version of the terms (it replaces the one in force once accepted)."
)
class ProposePartnershipTermsInput:
    partnership_id: strawberry.ID = strawberry.field(description="The partnership.")
    terms: PartnershipTermsInput = strawberry.field(description="The new version (you accept it so).")


@strawberry.input(description="Suspend, resume or end a partnership.")
class SetPartnershipStatusInput:
    partnership_id: strawberry.ID = strawberry.field(description="The partnership.")
    status: PartnershipStatusEnum = strawberry.field(
        description="SUSPENDED, ACTIVE (resume) or ENDED (final)."
    )


@strawberry.type(description="The result of a change to a partnership.")
class PartnershipPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    partnership: Partnership | None = strawberry.field(default=None, description="The partnership.")
    terms: PartnershipTerms | None = strawberry.field(
        default=None, description="The version proposed or answered, when the mutation concerns one."
    )


def terms_of(input: PartnershipTermsInput) -> service.Terms:
    offers = tuple(
        service.OfferTerms(
            code=o.code,
            name=o.name,
            kind=PartnerOfferKind[o.kind.name],
            points_price=o.points_price,
            settlement_fen=o.settlement_fen,
            coupon_template_id=None
            if o.coupon_template_id is None
            else decode_id(o.coupon_template_id, "CouponTemplate", f"offers.{i}.couponTemplateId"),
            pass_product_id=None
            if o.pass_product_id is None
            else decode_id(o.pass_product_id, "PassProduct", f"offers.{i}.passProductId"),
        )
        for i, o in enumerate(input.offers)
    )
    return service.Terms(
        offers=offers,
        store_ids=tuple(decode_id(s, "Store", "storeIds") for s in input.store_ids),
        valid_from=input.valid_from,
        valid_until=input.valid_until,
        limit_per_day=input.limit_per_day,
        limit_per_month=input.limit_per_month,
        budget_count=input.budget_count,
        budget_fen=input.budget_fen,
        period=SettlementPeriod[input.period.name],
    )


@strawberry.type
class PartnershipQuery:
    @strawberry.field(
        description="Partnerships in the caller's reach (those its brand is one side of), oldest first.",
        extensions=[Authorize(policy.READ_PARTNERSHIP)],
    )
    async def partnerships(
        self,
        info: Info,
        brand_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="Only those this brand is a side of.")
        ] = None,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[Partnership]:
        brand = decode_id(brand_id, "Brand", "brandId") if brand_id else None
        query = service.partnerships(info.context.principal, brand)
        return await connection(info, query, Partnership.from_model, first, after)


@strawberry.type
class PartnershipMutation:
    @strawberry.mutation(
        description="Brand HQ: propose a partnership to another brand's HQ.",
        extensions=[Authorize(policy.PROPOSE_PARTNERSHIP)],
    )
    async def propose_partnership(self, info: Info, input: ProposePartnershipInput) -> PartnershipPayload:
        async def run() -> dict:
            partnership = await service.propose(
                info.context.principal,
                input.name,
                decode_id(input.points_brand_id, "Brand", "pointsBrandId"),
                decode_id(input.offer_brand_id, "Brand", "offerBrandId"),
                terms_of(input.terms),
            )
            terms = (await service.versions([partnership.id]))[0][0]
            return {
                "partnership": Partnership.from_model(partnership),
                "terms": PartnershipTerms.from_model(terms),
            }

        return await mutate(PartnershipPayload, run)

    @strawberry.mutation(
        description="Brand HQ: accept or decline the other side's proposed version of the terms.",
        extensions=[Authorize(policy.RESPOND_PARTNERSHIP)],
    )
    async def respond_to_partnership_terms(
        self, info: Info, input: RespondToPartnershipTermsInput
    ) -> PartnershipPayload:
        async def run() -> dict:
            partnership, terms = await service.respond(
                info.context.principal,
                decode_id(input.partnership_id, "Partnership", "partnershipId"),
                input.version,
                input.accept,
            )
            return {
                "partnership": Partnership.from_model(partnership),
                "terms": PartnershipTerms.from_model(terms),
            }

        return await mutate(PartnershipPayload, run)

    @strawberry.mutation(
        description="Brand HQ: propose a new version of a partnership's terms.",
        extensions=[Authorize(policy.PROPOSE_TERMS)],
    )
    async def propose_partnership_terms(
        self, info: Info, input: ProposePartnershipTermsInput
    ) -> PartnershipPayload:
        async def run() -> dict:
            pid = decode_id(input.partnership_id, "Partnership", "partnershipId")
            terms = await service.propose_terms(info.context.principal, pid, terms_of(input.terms))
            partnership = await service.get(info.context.principal, pid)
            return {
                "partnership": Partnership.from_model(partnership),
                "terms": PartnershipTerms.from_model(terms),
            }

        return await mutate(PartnershipPayload, run)

    @strawberry.mutation(
        description="Brand HQ (either side): suspend, resume or end a partnership.",
        extensions=[Authorize(policy.SET_PARTNERSHIP_STATUS)],
    )
    async def set_partnership_status(
        self, info: Info, input: SetPartnershipStatusInput
    ) -> PartnershipPayload:
        async def run() -> dict:
            partnership = await service.set_status(
                info.context.principal,
                decode_id(input.partnership_id, "Partnership", "partnershipId"),
                PartnershipStatus[input.status.name],
            )
            return {"partnership": Partnership.from_model(partnership)}

        return await mutate(PartnershipPayload, run)

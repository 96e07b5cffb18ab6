"""Coupons: templates (HQ), coupons issued to members (HQ, or bought with points), reading them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import policy
from hub.domain import CouponKind
from hub.resolvers import coupons as service
from hub.resolvers.pagination import decode_cursor, encode_cursor
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, Connection, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import AFTER, FIRST, Brand, LedgerTransaction, Membership, _resolve_each, connection

IDEMPOTENCY_HELP = (
    "Your unique id for this write. Retrying with the same key returns the first result; the same key"
    " with a different request fails with IDEMPOTENCY_CONFLICT."
)


@strawberry.enum(name="CouponKind", description="What a coupon takes off a bill.")
class CouponKindEnum(Enum):
    AMOUNT_OFF = strawberry.enum_value(
        "amount_off", description="A fixed amount (amountOffFen), on a bill of at least minBillFen."
    )
    PERCENT_OFF = strawberry.enum_value(
        "percent_off",
        description="floor(bill × percentOffBasisPoints / 10000), at most maxOffFen when it is set.",
    )
    FREE_ITEM = strawberry.enum_value(
        "free_item",
        description="The dearest bill line with the SKU freeItemSku, free (at most maxOffFen when set).",
    )


@strawberry.enum(name="CouponStatus", description="Whether a coupon can still be used.")
class CouponStatusEnum(Enum):
    AVAILABLE = strawberry.enum_value("AVAILABLE", description="Not used and within its validity.")
    USED = strawberry.enum_value("USED", description="Used at a checkout (see usedBy).")
    EXPIRED = strawberry.enum_value(
        "EXPIRED", description="Past its validity without being used (or taken by the expiry job)."
    )


@strawberry.type(description="A brand's kind of coupon: what it takes off, when and where it is valid.")
class CouponTemplate(relay.Node):
    id: relay.NodeID[int]
    code: str = strawberry.field(description="The brand's code for it, fixed once created.")
    name: str = strawberry.field(description="What members see.")
    kind: CouponKindEnum = strawberry.field(description="What it takes off a bill.")
    amount_off_fen: BigInt = strawberry.field(description="AMOUNT_OFF: fen taken off.")
    min_bill_fen: BigInt = strawberry.field(description="The bill must be at least this (fen).")
    percent_off_basis_points: int = strawberry.field(description="PERCENT_OFF: basis points (1500 = 15 %).")
    max_off_fen: BigInt | None = strawberry.field(description="PERCENT_OFF, FREE_ITEM: the most taken off.")
    free_item_sku: str = strawberry.field(description="FREE_ITEM: the SKU of the free item.")
    valid_from: datetime | None = strawberry.field(description="Its coupons are usable from then.")
    valid_until: datetime | None = strawberry.field(description="Its coupons are usable until then.")
    valid_days: int | None = strawberry.field(
        description=(
            "Its coupons are usable through the end of the brand-local day this many days after issue"
            " (or until validUntil, whichever is first)."
        )
    )
    store_ids: list[relay.GlobalID] = strawberry.field(
        description="The stores where its coupons may be used; empty: every store of the brand."
    )
    points_price: BigInt | None = strawberry.field(
        description="Members may buy one for this many points (buyCoupon); null: not sold."
    )
    quantity: BigInt | None = strawberry.field(description="How many may ever be issued; null: no limit.")
    active: bool = strawberry.field(description="Inactive: no more are issued; issued ones stay usable.")
    created_at: datetime = strawberry.field(description="When HQ created it.")
    brand_pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: Any) -> CouponTemplate:
        return cls(
            id=m.id,
            code=m.code,
            name=m.name,
            kind=CouponKindEnum[CouponKind(m.kind).name],
            amount_off_fen=BigInt(m.amount_off_fen),
            min_bill_fen=BigInt(m.min_bill_fen),
            percent_off_basis_points=m.percent_off_bp,
            max_off_fen=m.max_off_fen,
            free_item_sku=m.free_item_sku,
            valid_from=m.valid_from,
            valid_until=m.valid_until,
            valid_days=m.valid_days,
            store_ids=[relay.GlobalID("Store", str(s)) for s in m.store_ids],
            points_price=m.points_price,
            quantity=m.quantity,
            active=m.active,
            created_at=m.created_at,
            brand_pk=m.brand_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[CouponTemplate | None]:
        async def fetch(pk: int) -> CouponTemplate:
            principal = info.context.principal
            return cls.from_model(await service.get_template(principal, policy.READ_COUPON_TEMPLATES, pk))

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="The brand whose coupons these are.")
    async def brand(self, info: Info) -> Brand:
        return Brand.from_model(await info.context.brands.load(self.brand_pk))

    @strawberry.field(description="How many coupons of this template were issued so far.")
    async def issued(self, info: Info) -> BigInt:
        return BigInt(await info.context.loaders.load(service.issued_counts, self.id))


@strawberry.type(description="One coupon a member holds: used once at a checkout, within its validity.")
class Coupon(relay.Node):
    id: relay.NodeID[int]
    status: CouponStatusEnum = strawberry.field(description="Whether it can still be used.")
    issued_at: datetime = strawberry.field(description="When it was issued.")
    expires_at: datetime | None = strawberry.field(description="When it stops being usable; null: never.")
    view: strawberry.Private[Any]

    @classmethod
    def from_view(cls, c: service.CouponView) -> Coupon:
        return cls(
            id=c.id,
            status=CouponStatusEnum[c.status()],
            issued_at=c.issued_at,
            expires_at=c.expires_at,
            view=c,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Coupon | None]:
        async def fetch(pk: int) -> Coupon:
            return cls.from_view(await service.get_coupon(info.context.principal, policy.READ_COUPONS, pk))

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="What kind of coupon it is.")
    async def template(self, info: Info) -> CouponTemplate:
        return CouponTemplate.from_model(await info.context.coupon_templates.load(self.view.template_id))

    @strawberry.field(description="The membership holding it.")
    async def membership(self, info: Info) -> Membership:
        return Membership.from_model(await info.context.memberships.load(self.view.membership_id))

    @strawberry.field(description="The transaction that issued it (or gave it back after a refund).")
    async def issued_by(self, info: Info) -> LedgerTransaction:
        return LedgerTransaction.from_model(await info.context.transactions.load(self.view.issued_by))

    @strawberry.field(description="The transaction that used it (a checkout), if any.")
    async def used_by(self, info: Info) -> LedgerTransaction | None:
        if self.view.used_by is None:
            return None
        return LedgerTransaction.from_model(await info.context.transactions.load(self.view.used_by))


async def coupons_connection(
    info: Info, membership: Any, status: CouponStatusEnum | None, first: int, after: str | None
) -> Connection[Coupon]:
    result = await service.coupons_of(
        membership,
        status.name if status else None,
        first,
        decode_cursor(after) if after else None,
        info.context.max_page_size,
    )
    return Connection.build(
        [Coupon.from_view(c) for c in result.coupons],
        [encode_cursor(c.id) for c in result.coupons],
        result.has_next_page,
        result.has_previous_page,
    )


# --- mutations --------------------------------------------------------------------------------------


@strawberry.input(description="A new coupon template. Only the fields of its kind may be set.")
class CreateCouponTemplateInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand (HQ: its own).")
    code: str = strawberry.field(
        description=(
            "The brand's unique code for it (lower-case letters, digits, _ . -). Sending the same"
            " template again answers the existing one; another template with a taken code is"
            " ALREADY_EXISTS."
        )
    )
    name: str = strawberry.field(description="What members see.")
    kind: CouponKindEnum = strawberry.field(description="What it takes off a bill.")
    amount_off_fen: BigInt = strawberry.field(default=BigInt(0), description="AMOUNT_OFF: fen taken off.")
    min_bill_fen: BigInt = strawberry.field(default=BigInt(0), description="The bill must be at least this.")
    percent_off_basis_points: int = strawberry.field(
        default=0, description="PERCENT_OFF: basis points, 1 to 10000 (1500 = 15 %)."
    )
    max_off_fen: BigInt | None = strawberry.field(
        default=None, description="PERCENT_OFF, FREE_ITEM: the most one coupon takes off."
    )
    free_item_sku: str = strawberry.field(default="", description="FREE_ITEM: the SKU made free.")
    valid_from: datetime | None = strawberry.field(default=None, description="Usable from then.")
    valid_until: datetime | None = strawberry.field(default=None, description="Usable until then.")
    valid_days: int | None = strawberry.field(
        default=None, description="Usable through the brand-local day this many days after issue (1-3650)."
    )
    store_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Stores where it may be used; empty: every store."
    )
    points_price: BigInt | None = strawberry.field(
        default=None, description="Members may buy one for this many points; null: not sold."
    )
    quantity: BigInt | None = strawberry.field(default=None, description="At most this many issued ever.")


@strawberry.input(
    description="Change how a template's coupons are offered; fields left out keep their value."
)
class UpdateCouponTemplateInput:
    template_id: strawberry.ID = strawberry.field(description="The template.")
    name: str | None = strawberry.field(default=None, description="A new name.")
    active: bool | None = strawberry.field(default=None, description="false: stop issuing it.")
    points_price: BigInt | None = strawberry.field(
        default=strawberry.UNSET, description="A new points price; null: no longer sold."
    )
    store_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="The stores where its coupons may be used (all of them, issued or not)."
    )
    quantity: BigInt | None = strawberry.field(
        default=strawberry.UNSET, description="A new issue limit; null: no limit."
    )


@strawberry.type(description="The result of creating or changing a coupon template.")
class CouponTemplatePayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    template: CouponTemplate | None = strawberry.field(default=None, description="The template.")
    created: bool | None = strawberry.field(
        default=None, description="createCouponTemplate: false when the same template existed already."
    )


@strawberry.input(description="HQ gives a member coupons of one template.")
class IssueCouponsInput:
    template_id: strawberry.ID = strawberry.field(description="The coupon template.")
    membership_id: strawberry.ID = strawberry.field(description="The member's membership of the brand.")
    count: int = strawberry.field(default=1, description="How many (1-10).")
    reason: str = strawberry.field(description="Why, for the record.")
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.input(description="Buy one coupon at its template's points price.")
class BuyCouponInput:
    template_id: strawberry.ID = strawberry.field(description="A template with a points price.")
    membership_id: strawberry.ID = strawberry.field(description="The member's membership of the brand.")
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.type(description="Coupons issued by one ledger transaction.")
class CouponsPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    transaction: LedgerTransaction | None = strawberry.field(default=None, description="The transaction.")
    membership: Membership | None = strawberry.field(default=None, description="Who got them.")
    coupons: list[Coupon] | None = strawberry.field(default=None, description="The coupons it issued.")
    points_balance: BigInt | None = strawberry.field(
        default=None, description="buyCoupon: available points right after the purchase."
    )


def _ids(values: list[strawberry.ID], type_name: str, field: str) -> list[int]:
    return [decode_id(x, type_name, field) for x in values]


def _issued(result: service.IssueResult) -> dict[str, Any]:
    return {
        "transaction": LedgerTransaction.from_model(result.transaction),
        "membership": Membership.from_model(result.membership),
        "coupons": [Coupon.from_view(c) for c in result.coupons],
        "points_balance": result.points_balance,
    }


@strawberry.type
class CouponQuery:
    @strawberry.field(
        description="Coupon templates of the brands in the caller's reach (or of one), oldest first.",
        extensions=[Authorize(policy.READ_COUPON_TEMPLATES)],
    )
    async def coupon_templates(
        self,
        info: Info,
        brand_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="Only this brand's.")
        ] = None,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[CouponTemplate]:
        brand = decode_id(brand_id, "Brand", "brandId") if brand_id else None
        query = service.templates(info.context.principal, brand)
        return await connection(info, query, CouponTemplate.from_model, first, after)


@strawberry.type
class CouponMutation:
    @strawberry.mutation(
        description="Brand HQ: define a kind of coupon.", extensions=[Authorize(policy.MANAGE_COUPONS)]
    )
    async def create_coupon_template(
        self, info: Info, input: CreateCouponTemplateInput
    ) -> CouponTemplatePayload:
        async def run() -> dict:
            terms = service.TemplateTerms(
                kind=CouponKind[input.kind.name],
                amount_off_fen=input.amount_off_fen,
                min_bill_fen=input.min_bill_fen,
                percent_off_bp=input.percent_off_basis_points,
                max_off_fen=input.max_off_fen,
                free_item_sku=input.free_item_sku,
                valid_from=input.valid_from,
                valid_until=input.valid_until,
                valid_days=input.valid_days,
                store_ids=tuple(_ids(input.store_ids, "Store", "storeIds")),
                points_price=input.points_price,
                quantity=input.quantity,
            )
            template, created = await service.create_template(
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
                input.code,
                input.name,
                terms,
            )
            return {"template": CouponTemplate.from_model(template), "created": created}

        return await mutate(CouponTemplatePayload, run)

    @strawberry.mutation(
        description="Brand HQ: rename a coupon template, stop issuing it, change its price, stores or limit.",
        extensions=[Authorize(policy.MANAGE_COUPONS)],
    )
    async def update_coupon_template(
        self, info: Info, input: UpdateCouponTemplateInput
    ) -> CouponTemplatePayload:
        async def run() -> dict:
            changes: dict[str, Any] = {}
            if input.points_price is not strawberry.UNSET:
                changes["points_price"] = input.points_price
            if input.quantity is not strawberry.UNSET:
                changes["quantity"] = input.quantity
            template = await service.update_template(
                info.context.principal,
                decode_id(input.template_id, "CouponTemplate", "templateId"),
                name=input.name,
                active=input.active,
                store_ids=None if input.store_ids is None else _ids(input.store_ids, "Store", "storeIds"),
                **changes,
            )
            return {"template": CouponTemplate.from_model(template)}

        return await mutate(CouponTemplatePayload, run)

    @strawberry.mutation(
        description="Brand HQ: give a member coupons (one ledger transaction).",
        extensions=[Authorize(policy.ISSUE_COUPONS)],
    )
    async def issue_coupons(self, info: Info, input: IssueCouponsInput) -> CouponsPayload:
        async def run() -> dict:
            result = await service.issue_coupons(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.template_id, "CouponTemplate", "templateId"),
                decode_id(input.membership_id, "Membership", "membershipId"),
                input.count,
                input.reason,
                input.idempotency_key,
            )
            return _issued(result)

        return await mutate(CouponsPayload, run)

    @strawberry.mutation(
        description="Store or member (own token): buy one coupon with points (one ledger transaction).",
        extensions=[Authorize(policy.BUY_COUPON)],
    )
    async def buy_coupon(self, info: Info, input: BuyCouponInput) -> CouponsPayload:
        async def run() -> dict:
            result = await service.buy_coupon(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.template_id, "CouponTemplate", "templateId"),
                decode_id(input.membership_id, "Membership", "membershipId"),
                input.idempotency_key,
            )
            return _issued(result)

        return await mutate(CouponsPayload, run)

"""Service passes (次卡): pass products (HQ), passes sold or bought, visits at the brand's stores."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import domain, policy
from hub.resolvers import passes as service
from hub.resolvers.pagination import decode_cursor, encode_cursor
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, Connection, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import AFTER, FIRST, Brand, LedgerTransaction, Membership, _resolve_each, connection
from hub.schema.points import IDEMPOTENCY_HELP


@strawberry.enum(name="PassPayment", description="How a service pass is paid for.")
class PassPaymentEnum(Enum):
    CASH = strawberry.enum_value(
        domain.PassPayment.CASH.value,
        description="Money paid at the store (recorded with its payment reference); stores only.",
    )
    STORED_VALUE = strawberry.enum_value(
        domain.PassPayment.STORED_VALUE.value, description="The member's stored value, at priceFen."
    )
    POINTS = strawberry.enum_value(domain.PassPayment.POINTS.value, description="Points, at pointsPrice.")


@strawberry.enum(name="ServicePassStatus", description="Whether a service pass can still be used.")
class ServicePassStatusEnum(Enum):
    ACTIVE = strawberry.enum_value("ACTIVE", description="Uses left, within its validity.")
    USED_UP = strawberry.enum_value("USED_UP", description="Every use was used.")
    EXPIRED = strawberry.enum_value("EXPIRED", description="Past its validity (unused uses are lost).")


@strawberry.type(description='A kind of service pass HQ sells: "10 car washes, valid 180 days".')
class PassProduct(relay.Node):
    id: relay.NodeID[int]
    code: str = strawberry.field(description="The brand's code for it, fixed once created.")
    name: str = strawberry.field(description="What members see.")
    uses: int = strawberry.field(description="Uses one pass holds (fixed once created).")
    valid_days: int = strawberry.field(
        description="A pass is usable through the brand-local day this many days after its sale."
    )
    price_fen: BigInt | None = strawberry.field(
        description="Its price in money (cash at a store, or stored value), in fen; null: not sold so."
    )
    points_price: BigInt | None = strawberry.field(description="Its price in points; null: not sold so.")
    active: bool = strawberry.field(description="false: not sold any more (sold passes stay usable).")
    created_at: datetime = strawberry.field(description="When HQ defined it.")
    brand_pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: Any) -> PassProduct:
        return cls(
            id=m.id,
            code=m.code,
            name=m.name,
            uses=m.uses,
            valid_days=m.valid_days,
            price_fen=m.price_fen,
            points_price=m.points_price,
            active=m.active,
            created_at=m.created_at,
            brand_pk=m.brand_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[PassProduct | None]:
        async def fetch(pk: int) -> PassProduct:
            principal = info.context.principal
            return cls.from_model(await service.get_product(principal, policy.READ_PASS_PRODUCTS, pk))

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="The brand selling it.")
    async def brand(self, info: Info) -> Brand:
        return Brand.from_model(await info.context.brands.load(self.brand_pk))


@strawberry.type(
    description="A member's service pass: uses left, used one per visit at any store of the brand."
)
class ServicePass(relay.Node):
    id: relay.NodeID[int]
    status: ServicePassStatusEnum = strawberry.field(description="Whether it can still be used.")
    uses: int = strawberry.field(description="Uses it held when sold.")
    uses_left: int = strawberry.field(description="Uses left now (0 once expired).")
    sold_at: datetime = strawberry.field(description="When it was sold.")
    expires_at: datetime | None = strawberry.field(description="When it stops being usable.")
    view: strawberry.Private[Any]

    @classmethod
    def from_view(cls, p: service.PassView) -> ServicePass:
        return cls(
            id=p.id,
            status=ServicePassStatusEnum[p.status()],
            uses=p.uses,
            uses_left=p.uses_left(),
            sold_at=p.sold_at,
            expires_at=p.expires_at,
            view=p,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[ServicePass | None]:
        async def fetch(pk: int) -> ServicePass:
            return cls.from_view(await service.get_pass(info.context.principal, policy.READ_PASSES, pk))

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="What kind of pass it is.")
    async def product(self, info: Info) -> PassProduct:
        return PassProduct.from_model(await info.context.pass_products.load(self.view.product_id))

    @strawberry.field(description="The membership holding it.")
    async def membership(self, info: Info) -> Membership:
        return Membership.from_model(await info.context.memberships.load(self.view.membership_id))

    @strawberry.field(description="The transaction that sold it.")
    async def sold_by(self, info: Info) -> LedgerTransaction:
        return LedgerTransaction.from_model(await info.context.transactions.load(self.view.sold_by))


async def passes_connection(
    info: Info, membership: Any, status: ServicePassStatusEnum | None, first: int, after: str | None
) -> Connection[ServicePass]:
    result = await service.passes_of(
        membership,
        status.name if status else None,
        first,
        decode_cursor(after) if after else None,
        info.context.max_page_size,
    )
    return Connection.build(
        [ServicePass.from_view(p) for p in result.passes],
        [encode_cursor(p.id) for p in result.passes],
        result.has_next_page,
    )


# --- mutations --------------------------------------------------------------------------------------


@strawberry.input(description="A new pass product.")
class CreatePassProductInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand (HQ: its own).")
    code: str = strawberry.field(
        description=(
            "The brand's unique code for it (lower-case letters, digits, _ . -). Sending the same product"
            " again answers the existing one; another with a taken code is ALREADY_EXISTS."
        )
    )
    name: str = strawberry.field(description="What members see.")
    uses: int = strawberry.field(description="Uses one pass holds (1-1000).")
    valid_days: int = strawberry.field(
        description="Usable through the brand-local day this many days on (1-3650)."
    )
    price_fen: BigInt | None = strawberry.field(
        default=None, description="Price in money (cash or stored value), in fen; null: not sold so."
    )
    points_price: BigInt | None = strawberry.field(
        default=None, description="Price in points; null: not sold so."
    )


@strawberry.input(description="Change a pass product; fields left out keep their value.")
class UpdatePassProductInput:
    product_id: strawberry.ID = strawberry.field(description="The product.")
    name: str | None = strawberry.field(default=None, description="A new name.")
    active: bool | None = strawberry.field(default=None, description="false: stop selling it.")
    price_fen: BigInt | None = strawberry.field(
        default=strawberry.UNSET, description="A new money price; null: no longer sold for money."
    )
    points_price: BigInt | None = strawberry.field(
        default=strawberry.UNSET, description="A new points price; null: no longer sold for points."
    )


@strawberry.type(description="The result of defining or changing a pass product.")
class PassProductPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    product: PassProduct | None = strawberry.field(default=None, description="The product.")
    created: bool | None = strawberry.field(
        default=None, description="createPassProduct: false when the same product existed already."
    )


@strawberry.input(description="Sell (store) or buy (member) one service pass.")
class BuyServicePassInput:
    product_id: strawberry.ID = strawberry.field(description="The pass product.")
    membership_id: strawberry.ID = strawberry.field(description="The member's membership of the brand.")
    payment: PassPaymentEnum = strawberry.field(description="How it is paid for.")
    payment_reference: str | None = strawberry.field(
        default=None, description="CASH: the till's payment reference (required); others: none."
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.input(description="One visit: use one use of a service pass.")
class UseServicePassInput:
    pass_id: strawberry.ID = strawberry.field(description="The member's service pass.")
    idempotency_key: str = strawberry.field(description=f"One per visit. {IDEMPOTENCY_HELP}")


@strawberry.type(description="A service pass after a sale or a visit.")
class ServicePassPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    service_pass: ServicePass | None = strawberry.field(default=None, description="The pass, as it is now.")
    transaction: LedgerTransaction | None = strawberry.field(
        default=None, description="The sale's or the visit's transaction."
    )


@strawberry.type
class PassQuery:
    @strawberry.field(
        description="Pass products of the brands in the caller's reach (or of one), oldest first.",
        extensions=[Authorize(policy.READ_PASS_PRODUCTS)],
    )
    async def pass_products(
        self,
        info: Info,
        brand_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="Only this brand's.")
        ] = None,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[PassProduct]:
        brand = decode_id(brand_id, "Brand", "brandId") if brand_id else None
        query = service.products(info.context.principal, brand)
        return await connection(info, query, PassProduct.from_model, first, after)


@strawberry.type
class PassMutation:
    @strawberry.mutation(
        description="Brand HQ: define a kind of service pass.", extensions=[Authorize(policy.MANAGE_PASSES)]
    )
    async def create_pass_product(self, info: Info, input: CreatePassProductInput) -> PassProductPayload:
        async def run() -> dict:
            product, created = await service.create_product(
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
                input.code,
                input.name,
                input.uses,
                input.valid_days,
                input.price_fen,
                input.points_price,
            )
            return {"product": PassProduct.from_model(product), "created": created}

        return await mutate(PassProductPayload, run)

    @strawberry.mutation(
        description="Brand HQ: rename a pass product, stop selling it, or change its prices.",
        extensions=[Authorize(policy.MANAGE_PASSES)],
    )
    async def update_pass_product(self, info: Info, input: UpdatePassProductInput) -> PassProductPayload:
        async def run() -> dict:
            changes: dict[str, Any] = {}
            if input.price_fen is not strawberry.UNSET:
                changes["price_fen"] = input.price_fen
            if input.points_price is not strawberry.UNSET:
                changes["points_price"] = input.points_price
            product = await service.update_product(
                info.context.principal,
                decode_id(input.product_id, "PassProduct", "productId"),
                name=input.name,
                active=input.active,
                **changes,
            )
            return {"product": PassProduct.from_model(product)}

        return await mutate(PassProductPayload, run)

    @strawberry.mutation(
        description=(
            "Store (cash, stored value or points) or member with its own token (stored value or points):"
            " one service pass and its payment in one ledger transaction."
        ),
        extensions=[Authorize(policy.BUY_PASS)],
    )
    async def buy_service_pass(self, info: Info, input: BuyServicePassInput) -> ServicePassPayload:
        async def run() -> dict:
            result = await service.buy_pass(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.product_id, "PassProduct", "productId"),
                decode_id(input.membership_id, "Membership", "membershipId"),
                domain.PassPayment[input.payment.name],
                input.payment_reference,
                input.idempotency_key,
            )
            return {
                "service_pass": ServicePass.from_view(result.service_pass),
                "transaction": LedgerTransaction.from_model(result.transaction),
            }

        return await mutate(ServicePassPayload, run)

    @strawberry.mutation(
        description="Store: a visit uses one use of a member's pass (once per idempotency key).",
        extensions=[Authorize(policy.USE_PASS)],
    )
    async def use_service_pass(self, info: Info, input: UseServicePassInput) -> ServicePassPayload:
        async def run() -> dict:
            result = await service.use_pass(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.pass_id, "ServicePass", "passId"),
                input.idempotency_key,
            )
            return {
                "service_pass": ServicePass.from_view(result.service_pass),
                "transaction": LedgerTransaction.from_model(result.transaction),
            }

        return await mutate(ServicePassPayload, run)

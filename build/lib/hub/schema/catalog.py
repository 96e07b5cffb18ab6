"""Gift catalog: items (HQ), orders (member or store), collecting and cancelling them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import domain, policy
from hub.resolvers import catalog as service
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, Connection, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import (
    AFTER,
    FIRST,
    Brand,
    LedgerTransaction,
    Membership,
    Store,
    _resolve_each,
    connection,
)
from hub.schema.points import IDEMPOTENCY_HELP
from hub.schema.rewards import LimitPeriodEnum


@strawberry.enum(name="GiftOrderStatus", description="Where a gift order is.")
class GiftOrderStatusEnum(Enum):
    PLACED = strawberry.enum_value(
        domain.GiftOrderStatus.PLACED.value, description="Points paid; waiting to be collected."
    )
    FULFILLED = strawberry.enum_value(
        domain.GiftOrderStatus.FULFILLED.value, description="Collected at its store."
    )
    CANCELLED = strawberry.enum_value(
        domain.GiftOrderStatus.CANCELLED.value, description="Cancelled; its points were returned."
    )


@strawberry.type(description="A gift HQ offers for points, plus an optional cash part paid on collection.")
class GiftItem(relay.Node):
    id: relay.NodeID[int]
    code: str = strawberry.field(description="The brand's code for it, fixed once created.")
    name: str = strawberry.field(description="What members see.")
    image_url: str = strawberry.field(description="A picture of it (empty: none).")
    points_price: BigInt = strawberry.field(description="Points one order costs.")
    cash_fen: BigInt = strawberry.field(
        description='Cash paid at the store on collection, in fen ("2,000 points + ¥9.90": 990).'
    )
    stock: BigInt | None = strawberry.field(
        description="How many may be ordered in all (cancelled orders give theirs back); null: unlimited."
    )
    limit_per_member: int | None = strawberry.field(
        description="At most this many orders per member in each limitPeriod; null: no limit."
    )
    limit_period: LimitPeriodEnum = strawberry.field(description="The period limitPerMember counts in.")
    valid_from: datetime | None = strawberry.field(description="Orderable from then.")
    valid_until: datetime | None = strawberry.field(description="Orderable until then.")
    store_ids: list[relay.GlobalID] = strawberry.field(
        description="The stores where it is collected; empty: every store of the brand."
    )
    active: bool = strawberry.field(description="false: not offered (placed orders stand).")
    created_at: datetime = strawberry.field(description="When HQ added it.")
    brand_pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: Any) -> GiftItem:
        return cls(
            id=m.id,
            code=m.code,
            name=m.name,
            image_url=m.image_url,
            points_price=BigInt(m.points_price),
            cash_fen=BigInt(m.cash_fen),
            stock=m.stock,
            limit_per_member=m.limit_per_member,
            limit_period=LimitPeriodEnum(str(m.limit_period)),
            valid_from=m.valid_from,
            valid_until=m.valid_until,
            store_ids=[relay.GlobalID("Store", str(s)) for s in m.store_ids],
            active=m.active,
            created_at=m.created_at,
            brand_pk=m.brand_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[GiftItem | None]:
        async def fetch(pk: int) -> GiftItem:
            return cls.from_model(await service.get_item(info.context.principal, policy.READ_GIFTS, pk))

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="The brand offering it.")
    async def brand(self, info: Info) -> Brand:
        return Brand.from_model(await info.context.brands.load(self.brand_pk))

    @strawberry.field(description="How many are ordered and not cancelled.")
    async def ordered(self, info: Info) -> BigInt:
        return BigInt(await info.context.loaders.load(service.ordered_counts, self.id))


@strawberry.type(description="A member's order of a gift: placed, then collected at its store or cancelled.")
class GiftOrder(relay.Node):
    id: relay.NodeID[int]
    status: GiftOrderStatusEnum = strawberry.field(description="Where it is.")
    points: BigInt = strawberry.field(description="Points paid for it (0: a prize).")
    cash_fen: BigInt = strawberry.field(description="Cash due at collection, in fen.")
    placed_at: datetime = strawberry.field(description="When it was placed.")
    fulfilled_at: datetime | None = strawberry.field(description="When it was collected.")
    cancelled_at: datetime | None = strawberry.field(description="When it was cancelled.")
    cancel_reason: str = strawberry.field(description="Why it was cancelled, if said.")
    model: strawberry.Private[Any]

    @classmethod
    def from_model(cls, m: Any) -> GiftOrder:
        return cls(
            id=m.id,
            status=GiftOrderStatusEnum(str(m.status)),
            points=BigInt(m.points),
            cash_fen=BigInt(m.cash_fen),
            placed_at=m.created_at,
            fulfilled_at=m.fulfilled_at,
            cancelled_at=m.cancelled_at,
            cancel_reason=m.cancel_reason,
            model=m,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[GiftOrder | None]:
        async def fetch(pk: int) -> GiftOrder:
            principal = info.context.principal
            return cls.from_model(await service.get_order(principal, policy.READ_GIFT_ORDER, pk, "id"))

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="The gift ordered.")
    async def item(self, info: Info) -> GiftItem:
        return GiftItem.from_model(await info.context.gift_items.load(self.model.item_id))

    @strawberry.field(description="The membership it was ordered for.")
    async def membership(self, info: Info) -> Membership:
        return Membership.from_model(await info.context.memberships.load(self.model.membership_id))

    @strawberry.field(description="The store where it is collected.")
    async def store(self, info: Info) -> Store:
        return Store.from_model(await info.context.stores.load(self.model.store_id))

    @strawberry.field(description="The transaction that placed it (and paid its points).")
    async def transaction(self, info: Info) -> LedgerTransaction:
        return LedgerTransaction.from_model(await info.context.transactions.load(self.model.transaction_id))

    @strawberry.field(description="The transaction that returned its points, once cancelled.")
    async def cancel_transaction(self, info: Info) -> LedgerTransaction | None:
        if self.model.cancel_transaction_id is None:
            return None
        return LedgerTransaction.from_model(
            await info.context.transactions.load(self.model.cancel_transaction_id)
        )


def _status(status: GiftOrderStatusEnum | None) -> domain.GiftOrderStatus | None:
    return None if status is None else domain.GiftOrderStatus[status.name]


async def gift_orders_connection(
    info: Info, membership: Any, status: GiftOrderStatusEnum | None, first: int, after: str | None
) -> Connection[GiftOrder]:
    query = service.orders_of(membership, _status(status))
    return await connection(info, query, GiftOrder.from_model, first, after, newest_first=True)


# --- mutations --------------------------------------------------------------------------------------


@strawberry.input(description="A new gift catalog item.")
class CreateGiftItemInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand (HQ: its own).")
    code: str = strawberry.field(
        description=(
            "The brand's unique code for it (lower-case letters, digits, _ . -). Sending the same item"
            " again answers the existing one; another item with a taken code is ALREADY_EXISTS."
        )
    )
    name: str = strawberry.field(description="What members see.")
    points_price: BigInt = strawberry.field(description="Points one order costs (at least 1).")
    cash_fen: BigInt = strawberry.field(default=BigInt(0), description="Cash paid on collection, in fen.")
    image_url: str = strawberry.field(default="", description="An http(s) URL of a picture of it.")
    stock: BigInt | None = strawberry.field(
        default=None, description="How many may be ordered; null: unlimited."
    )
    limit_per_member: int | None = strawberry.field(
        default=None, description="At most this many orders per member per limitPeriod (1-1000)."
    )
    limit_period: LimitPeriodEnum = strawberry.field(
        default=LimitPeriodEnum.TOTAL, description="The period limitPerMember counts in."
    )
    valid_from: datetime | None = strawberry.field(default=None, description="Orderable from then.")
    valid_until: datetime | None = strawberry.field(default=None, description="Orderable until then.")
    store_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Stores where it is collected; empty: every store."
    )


@strawberry.input(description="Change a gift item; fields left out keep their value.")
class UpdateGiftItemInput:
    item_id: strawberry.ID = strawberry.field(description="The item.")
    name: str | None = strawberry.field(default=None, description="A new name.")
    active: bool | None = strawberry.field(default=None, description="false: stop offering it.")
    points_price: BigInt | None = strawberry.field(default=None, description="A new points price.")
    cash_fen: BigInt | None = strawberry.field(default=None, description="A new cash part.")
    image_url: str | None = strawberry.field(default=None, description="A new picture.")
    stock: BigInt | None = strawberry.field(
        default=strawberry.UNSET,
        description="A new total stock (below what is ordered: no more orders); null: unlimited.",
    )
    limit_per_member: int | None = strawberry.field(
        default=strawberry.UNSET, description="A new per-member limit; null: none."
    )
    limit_period: LimitPeriodEnum | None = strawberry.field(
        default=None, description="A new period for the limit (counting starts afresh)."
    )
    valid_from: datetime | None = strawberry.field(default=strawberry.UNSET, description="A new start.")
    valid_until: datetime | None = strawberry.field(default=strawberry.UNSET, description="A new end.")
    store_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="The stores where it is collected (empty: every store)."
    )


@strawberry.type(description="The result of adding or changing a gift item.")
class GiftItemPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    item: GiftItem | None = strawberry.field(default=None, description="The item.")
    created: bool | None = strawberry.field(
        default=None, description="createGiftItem: false when the same item existed already."
    )


@strawberry.input(description="Order a gift for its points price.")
class OrderGiftInput:
    item_id: strawberry.ID = strawberry.field(description="The gift item.")
    membership_id: strawberry.ID = strawberry.field(description="The member's membership of the brand.")
    store_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Where it is collected: one of the item's stores (a store ordering: itself by default).",
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.input(description="Hand over a gift order at its store.")
class FulfillGiftOrderInput:
    order_id: strawberry.ID = strawberry.field(description="The order (collected at the calling store).")


@strawberry.input(description="Cancel a gift order that was not collected; its points come back once.")
class CancelGiftOrderInput:
    order_id: strawberry.ID = strawberry.field(description="The order.")
    reason: str = strawberry.field(default="", description="Why, for the record.")


@strawberry.type(description="A gift order after a change.")
class GiftOrderPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    order: GiftOrder | None = strawberry.field(default=None, description="The order.")
    transaction: LedgerTransaction | None = strawberry.field(
        default=None, description="orderGift: the order's transaction; cancelGiftOrder: the return's."
    )
    points_balance: BigInt | None = strawberry.field(
        default=None, description="The member's available points right after that transaction."
    )


def _ids(values: list[strawberry.ID], type_name: str, field: str) -> list[int]:
    return [decode_id(x, type_name, field) for x in values]


def _ordered(result: service.OrderResult) -> dict[str, Any]:
    return {
        "order": GiftOrder.from_model(result.order),
        "transaction": LedgerTransaction.from_model(result.transaction) if result.transaction else None,
        "points_balance": result.points_balance,
    }


@strawberry.type
class CatalogQuery:
    @strawberry.field(
        description="Gift items of the brands in the caller's reach (or of one), oldest first.",
        extensions=[Authorize(policy.READ_GIFTS)],
    )
    async def gift_items(
        self,
        info: Info,
        brand_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="Only this brand's.")
        ] = None,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[GiftItem]:
        brand = decode_id(brand_id, "Brand", "brandId") if brand_id else None
        return await connection(
            info, service.items(info.context.principal, brand), GiftItem.from_model, first, after
        )

    @strawberry.field(
        description="Gift orders, newest first: HQ its brand's, a store those collected at it.",
        extensions=[Authorize(policy.LIST_GIFT_ORDERS)],
    )
    async def gift_orders(
        self,
        info: Info,
        brand_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="Only this brand's.")
        ] = None,
        store_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="Only those collected at this store.")
        ] = None,
        status: Annotated[
            GiftOrderStatusEnum | None, strawberry.argument(description="Only orders in this status.")
        ] = None,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[GiftOrder]:
        query = service.orders(
            info.context.principal,
            decode_id(brand_id, "Brand", "brandId") if brand_id else None,
            decode_id(store_id, "Store", "storeId") if store_id else None,
            _status(status),
        )
        return await connection(info, query, GiftOrder.from_model, first, after, newest_first=True)


@strawberry.type
class CatalogMutation:
    @strawberry.mutation(
        description="Brand HQ: add a gift to the catalog.", extensions=[Authorize(policy.MANAGE_GIFTS)]
    )
    async def create_gift_item(self, info: Info, input: CreateGiftItemInput) -> GiftItemPayload:
        async def run() -> dict:
            terms = service.ItemTerms(
                points_price=input.points_price,
                cash_fen=input.cash_fen,
                image_url=input.image_url,
                stock=input.stock,
                limit_per_member=input.limit_per_member,
                limit_period=domain.LimitPeriod[input.limit_period.name],
                valid_from=input.valid_from,
                valid_until=input.valid_until,
                store_ids=tuple(_ids(input.store_ids, "Store", "storeIds")),
            )
            item, created = await service.create_item(
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
                input.code,
                input.name,
                terms,
            )
            return {"item": GiftItem.from_model(item), "created": created}

        return await mutate(GiftItemPayload, run)

    @strawberry.mutation(
        description="Brand HQ: change a gift item's price, stock, limit, validity or stores, or stop it.",
        extensions=[Authorize(policy.MANAGE_GIFTS)],
    )
    async def update_gift_item(self, info: Info, input: UpdateGiftItemInput) -> GiftItemPayload:
        async def run() -> dict:
            changes: dict[str, Any] = {}
            for name in ("points_price", "cash_fen", "image_url"):
                if getattr(input, name) is not None:
                    changes[name] = getattr(input, name)
            for name in ("stock", "limit_per_member", "valid_from", "valid_until"):
                if getattr(input, name) is not strawberry.UNSET:
                    changes[name] = getattr(input, name)
            if input.limit_period is not None:
                changes["limit_period"] = domain.LimitPeriod[input.limit_period.name]
            if input.store_ids is not None:
                changes["store_ids"] = tuple(_ids(input.store_ids, "Store", "storeIds"))
            item = await service.update_item(
                info.context.principal,
                decode_id(input.item_id, "GiftItem", "itemId"),
                name=input.name,
                active=input.active,
                changes=changes,
            )
            return {"item": GiftItem.from_model(item)}

        return await mutate(GiftItemPayload, run)

    @strawberry.mutation(
        description="Store or member (own token): order a gift with points (one ledger transaction).",
        extensions=[Authorize(policy.ORDER_GIFT)],
    )
    async def order_gift(self, info: Info, input: OrderGiftInput) -> GiftOrderPayload:
        async def run() -> dict:
            result = await service.order_gift(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.item_id, "GiftItem", "itemId"),
                decode_id(input.membership_id, "Membership", "membershipId"),
                decode_id(input.store_id, "Store", "storeId") if input.store_id else None,
                input.idempotency_key,
            )
            return _ordered(result)

        return await mutate(GiftOrderPayload, run)

    @strawberry.mutation(
        description="Store: hand over a gift order collected at this store (again: the same answer).",
        extensions=[Authorize(policy.FULFIL_GIFT_ORDER)],
    )
    async def fulfill_gift_order(self, info: Info, input: FulfillGiftOrderInput) -> GiftOrderPayload:
        async def run() -> dict:
            order = await service.fulfil_order(
                info.context.principal, decode_id(input.order_id, "GiftOrder", "orderId")
            )
            return {"order": GiftOrder.from_model(order)}

        return await mutate(GiftOrderPayload, run)

    @strawberry.mutation(
        description=(
            "HQ, a store or the member: cancel an order not yet collected; its points come back once"
            " (cancelling again answers the same)."
        ),
        extensions=[Authorize(policy.CANCEL_GIFT_ORDER)],
    )
    async def cancel_gift_order(self, info: Info, input: CancelGiftOrderInput) -> GiftOrderPayload:
        async def run() -> dict:
            result = await service.cancel_order(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.order_id, "GiftOrder", "orderId"),
                input.reason,
            )
            return _ordered(result)

        return await mutate(GiftOrderPayload, run)

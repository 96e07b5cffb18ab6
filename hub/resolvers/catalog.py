"""Gift catalog: items HQ offers for points (plus an optional cash part), and members' orders.

An order is one ledger transaction (kind ``gift_order``): the member's points to the burn account, and
two ledger guards, so that nothing is decided by reading first and writing later:

- ``gift:stock:i<item>`` counts the item's open and collected orders, bounded by its ``stock``: of 50
  concurrent orders for the last one, exactly one commits (NOT_AVAILABLE for the others);
- ``gift:b<brand>:i<item>:m<membership>:<period>`` counts the member's orders in the brand-local
  period, bounded by ``limitPerMember`` (LIMIT_REACHED).

The ``gift_order`` row is written after the commit from the transaction's details, keyed by it (a
retry finds the same row). An order is PLACED, then FULFILLED by its store, or CANCELLED: the status
changes by a conditional update (so fulfilling and cancelling cannot both win), and a cancellation
returns the points and gives the counts back in one more transaction whose idempotency key is the
order's own, so the points come back once however often it is retried. ``gift_order_parts`` gives any
other command (a lottery prize, a partner's offer) the guards and details of an order it places in its
own transaction. See docs/spending.md, "Gift catalog".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from hub import policy
from hub.auth import Principal
from hub.db import with_retries
from hub.domain import GiftOrderStatus, LimitPeriod, Role
from hub.errors import DomainError, ErrorCode, InvalidInput, NotFound
from hub.ledger.accounts import ASSET_CODE, AccountRef
from hub.ledger.audit import Violation
from hub.ledger.commands import Command, Guard, Leg, LotTerms, TransactionRecord
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.ledger.sql import as_json
from hub.models import Brand, GiftItem, GiftOrder, LedgerCounter, Membership, Store, TransactionKind
from hub.resolvers import access
from hub.resolvers import validation as v
from hub.resolvers.checkin import brand_day
from hub.resolvers.claims import submit_once
from hub.resolvers.earning import expires_at_for
from hub.resolvers.rewards import period_key

MAX_STORES = 500
MAX_LIMIT = 1_000
# The idempotency scope of cancellations: one per order, whoever cancels it.
CANCEL_SCOPE = "gift-order"


# --- items ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemTerms:
    """What an item costs, how many there are, who may order how often, when and where."""

    points_price: int
    cash_fen: int = 0
    image_url: str = ""
    stock: int | None = None
    limit_per_member: int | None = None
    limit_period: LimitPeriod = LimitPeriod.TOTAL
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    store_ids: tuple[int, ...] = ()


def _utc(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInput("Give a time zone (e.g. 2026-12-31T23:59:59+08:00).", field)
    return value.astimezone(UTC)


def _bounded(value: int, field: str, minimum: int, maximum: int = v.MAX_AMOUNT) -> int:
    if not minimum <= value <= maximum:
        raise InvalidInput(f"Must be between {minimum} and {maximum}.", field)
    return value


def check_terms(terms: ItemTerms) -> ItemTerms:
    """The terms, checked field by field (INVALID_INPUT naming the field), times in UTC."""
    url = v.text(terms.image_url, "imageUrl", max_length=500, required=False)
    if url and not url.startswith(("https://", "http://")):
        raise InvalidInput("An http(s) URL.", "imageUrl")
    valid_from = _utc(terms.valid_from, "validFrom")
    valid_until = _utc(terms.valid_until, "validUntil")
    if valid_from and valid_until and valid_until <= valid_from:
        raise InvalidInput("validUntil must come after validFrom.", "validUntil")
    if len(terms.store_ids) > MAX_STORES:
        raise InvalidInput(f"At most {MAX_STORES} stores.", "storeIds")
    return ItemTerms(
        points_price=_bounded(terms.points_price, "pointsPrice", 1),
        cash_fen=_bounded(terms.cash_fen, "cashFen", 0),
        image_url=url,
        stock=None if terms.stock is None else _bounded(terms.stock, "stock", 0),
        limit_per_member=None
        if terms.limit_per_member is None
        else _bounded(terms.limit_per_member, "limitPerMember", 1, MAX_LIMIT),
        limit_period=LimitPeriod(terms.limit_period),
        valid_from=valid_from,
        valid_until=valid_until,
        store_ids=tuple(sorted(set(terms.store_ids))),
    )


def _terms_of(item: GiftItem) -> ItemTerms:
    return ItemTerms(
        points_price=item.points_price,
        cash_fen=item.cash_fen,
        image_url=item.image_url,
        stock=item.stock,
        limit_per_member=item.limit_per_member,
        limit_period=LimitPeriod(item.limit_period),
        valid_from=item.valid_from,
        valid_until=item.valid_until,
        store_ids=tuple(item.store_ids),
    )


def _columns(terms: ItemTerms) -> dict[str, Any]:
    values = {f.name: getattr(terms, f.name) for f in fields(terms)}
    values["store_ids"] = list(terms.store_ids)
    return values


async def _check_stores(brand_id: int, store_ids: Sequence[int]) -> None:
    if store_ids and await Store.filter(brand_id=brand_id, id__in=list(store_ids)).count() != len(store_ids):
        raise NotFound("No such store in this brand.", "storeIds")


async def create_item(
    principal: Principal | None, brand_id: int, code: str, name: str, terms: ItemTerms
) -> tuple[GiftItem, bool]:
    """HQ adds an item. The code is its natural key: sending the same item again answers the existing
    one (created=False); another item with a taken code is ALREADY_EXISTS."""
    brand = await access.get_brand(principal, policy.MANAGE_GIFTS, brand_id)
    code = v.text(code, "code", max_length=32)
    if not ASSET_CODE.fullmatch(code):
        raise InvalidInput(
            "Lower-case letters, digits, '_', '.', '-'; starting with a letter or digit.", "code"
        )
    name = v.text(name, "name", max_length=100)
    terms = check_terms(terms)
    await _check_stores(brand.id, terms.store_ids)
    columns = _columns(terms)
    existing = await GiftItem.get_or_none(brand_id=brand.id, code=code)
    if existing is None:
        try:
            return await GiftItem.create(brand_id=brand.id, code=code, name=name, **columns), True
        except IntegrityError:  # created at the same moment by a retry of this request
            existing = await GiftItem.get(brand_id=brand.id, code=code)
    if existing.name == name and _terms_of(existing) == terms:
        return existing, False
    raise DomainError(ErrorCode.ALREADY_EXISTS, "This brand already has a gift item with that code.", "code")


async def update_item(
    principal: Principal | None,
    item_id: int,
    *,
    name: str | None = None,
    active: bool | None = None,
    changes: dict[str, Any] | None = None,
) -> GiftItem:
    """HQ changes an item; fields left out keep their value. ``changes`` holds ``ItemTerms`` fields.
    A stock below what was already ordered only stops further orders; a new price or limit applies to
    orders from now on."""
    item = await get_item(principal, policy.MANAGE_GIFTS, item_id, "itemId")
    terms = check_terms(replace(_terms_of(item), **(changes or {})))
    await _check_stores(item.brand_id, terms.store_ids)
    if name is not None:
        item.name = v.text(name, "name", max_length=100)
    if active is not None:
        item.active = active
    for column, value in _columns(terms).items():
        setattr(item, column, value)
    await item.save()
    return item


def _items_in_reach(p: Principal) -> QuerySet[GiftItem]:
    return GiftItem.filter(brand_id__in=Subquery(access.brands_in_reach(p).values("id")))


def items(principal: Principal | None, brand_id: int | None = None) -> QuerySet[GiftItem]:
    """Items of the brands in the caller's reach (a member: the brands it belongs to)."""
    query = GiftItem.filter(brand_id__in=Subquery(access.brands(principal, policy.READ_GIFTS).values("id")))
    return query if brand_id is None else query.filter(brand_id=brand_id)


async def get_item(
    principal: Principal | None, action: policy.Action, item_id: int, field: str = "id"
) -> GiftItem:
    """An item of a brand in the caller's reach (managing, reading or ordering it), or NOT_FOUND."""
    item = await _items_in_reach(policy.require(principal, action)).filter(id=item_id).first()
    if item is None:
        raise NotFound("No such gift item.", field)
    return item


async def ordered_counts(item_ids: list[int]) -> list[int]:
    """How many of each item are ordered and not cancelled (its stock counter), for a DataLoader."""
    rows = {c.key: c.value for c in await LedgerCounter.filter(key__in=[stock_key(i) for i in item_ids])}
    return [int(rows.get(stock_key(i), 0)) for i in item_ids]


# --- ordering ---------------------------------------------------------------------------------------


def stock_key(item_id: int) -> str:
    """The guard counting an item's orders that are not cancelled (its stock is the maximum)."""
    return f"gift:stock:i{item_id}"


def limit_key(item: GiftItem, membership_id: int, period: str) -> str:
    return f"gift:b{item.brand_id}:i{item.id}:m{membership_id}:{period}"


@dataclass(frozen=True, slots=True)
class GiftOrderParts:
    """What placing an order adds to a ledger command: its guards and details (and the points legs
    when the member pays)."""

    legs: tuple[Leg, ...]
    guards: tuple[Guard, ...]
    details: dict[str, Any]


def gift_order_parts(
    item: GiftItem,
    brand: Brand,
    membership_id: int,
    store_id: int,
    *,
    points: int,
    now: datetime | None = None,
) -> GiftOrderParts:
    """The parts of a ledger command that place an order of ``item`` for a membership, collected at
    ``store_id``, for ``points`` of the member's points (0: given, e.g. a lottery prize).

    For any capability that places an order in its own transaction: add ``legs`` and ``guards`` to the
    command and ``details`` to its details, then call ``record_order`` with the committed transaction.
    The guards count the item's stock (NOT_AVAILABLE when none is left) and the member's limit per
    period (LIMIT_REACHED). Raises NOT_AVAILABLE for an item that is inactive or outside its validity,
    and NOT_FOUND (field storeId) for a store where it is not collected. The membership and the store
    must be of the item's brand.
    """
    now = now or datetime.now(UTC)
    if brand.id != item.brand_id:
        raise ValueError("the item is not the brand's")
    if not item.active:
        raise DomainError(ErrorCode.NOT_AVAILABLE, "This gift is not offered any more.", "itemId")
    if (item.valid_from and now < item.valid_from) or (item.valid_until and now >= item.valid_until):
        raise DomainError(ErrorCode.NOT_AVAILABLE, "This gift is not offered at this time.", "itemId")
    if item.store_ids and store_id not in item.store_ids:
        raise NotFound("This gift is not collected at that store.", "storeId")
    stock = stock_key(item.id)
    guards = [
        Guard(
            stock,
            delta=1,
            maximum=item.stock,
            code=ErrorCode.NOT_AVAILABLE,
            message="This gift is out of stock.",
            field="itemId",
        )
    ]
    limit = ""
    if item.limit_per_member is not None:
        period = period_key(LimitPeriod(item.limit_period), brand_day(brand, now))
        limit = limit_key(item, membership_id, period)
        guards.append(
            Guard(
                limit,
                delta=1,
                maximum=item.limit_per_member,
                message=f"At most {item.limit_per_member} of this gift per member ({item.limit_period}).",
                field="itemId",
            )
        )
    legs: tuple[Leg, ...] = ()
    if points:
        member = AccountRef.member(brand.id, membership_id)
        legs = (Leg(member, -points), Leg(AccountRef.burn_for(brand.id, membership_id), points))
    details = {
        "giftItemId": item.id,
        "giftStoreId": store_id,
        "giftPoints": points,
        "giftCashFen": item.cash_fen,
        "giftStockKey": stock,
        "giftLimitKey": limit,
    }
    return GiftOrderParts(legs, tuple(guards), details)


async def record_order(txn: TransactionRecord) -> GiftOrder:
    """The order row of a committed transaction that placed one, written from its details if it is not
    there yet (a retry, or a concurrent one, finds the same row)."""
    row = await GiftOrder.get_or_none(transaction_id=txn.id)
    if row is not None:
        return row
    d = as_json(txn.details)
    values = {
        "brand_id": txn.brand_id,
        "item_id": int(d["giftItemId"]),
        "membership_id": txn.membership_id,
        "store_id": int(d["giftStoreId"]),
        "points": int(d["giftPoints"]),
        "cash_fen": int(d["giftCashFen"]),
        "stock_key": d["giftStockKey"],
        "limit_key": d["giftLimitKey"],
    }
    try:
        return await with_retries(lambda: GiftOrder.create(transaction_id=txn.id, **values))
    except IntegrityError:  # a concurrent retry wrote it
        return await GiftOrder.get(transaction_id=txn.id)


@dataclass(frozen=True, slots=True)
class OrderResult:
    order: GiftOrder
    transaction: TransactionRecord | None
    points_balance: int | None
    replayed: bool = False


async def _pickup_store(p: Principal, membership: Membership, store_id: int | None) -> int:
    if store_id is None:
        if p.role is Role.STORE and p.store_id is not None:
            return p.store_id  # a store orders for collection at itself unless it names another
        raise InvalidInput("Choose the store where the gift is collected.", "storeId")
    if not await Store.filter(id=store_id, brand_id=membership.brand_id).exists():
        raise NotFound("No such store in this brand.", "storeId")
    return store_id


async def order_gift(
    ledger: LedgerWriter,
    principal: Principal | None,
    item_id: int,
    membership_id: int,
    store_id: int | None,
    idempotency_key: str,
    now: datetime | None = None,
) -> OrderResult:
    """A member (own token) or a store orders an item for the item's points price: one transaction."""
    p = policy.require(principal, policy.ORDER_GIFT)
    key = v.idempotency_key(idempotency_key)
    membership = await access.get_membership(p, policy.ORDER_GIFT, membership_id)
    item = await get_item(p, policy.ORDER_GIFT, item_id, "itemId")
    if item.brand_id != membership.brand_id:
        raise NotFound("No such gift item.", "itemId")
    store = await _pickup_store(p, membership, store_id)
    brand: Brand = membership.brand
    points = AccountRef.member(brand.id, membership.id)
    # The price is the item's at the time, not part of the request: a retry after a price change still
    # answers the first order.
    request_claim = claim(
        p.idempotency_scope, key, "orderGift", item=item.id, membership=membership.id, store=store
    )

    async def build() -> Command:
        parts = gift_order_parts(item, brand, membership.id, store, points=item.points_price, now=now)
        return Command(
            kind=TransactionKind.GIFT_ORDER,
            brand_id=brand.id,
            legs=parts.legs,
            claim=request_claim,
            store_id=p.store_id,
            membership_id=membership.id,
            actor_key_id=p.key_id,
            reason=item.name,
            details=parts.details,
            guards=parts.guards,
            report=points,
        )

    probe = Command(TransactionKind.GIFT_ORDER, brand.id, (), request_claim, report=points)
    outcome = await submit_once(ledger, request_claim, brand.id, build, probe)
    order = await record_order(outcome.transaction)
    return OrderResult(order, outcome.transaction, outcome.report_balance, outcome.replayed)


def orders_in_reach(p: Principal, action: policy.Action) -> QuerySet[GiftOrder]:
    """Orders of the memberships in the caller's reach."""
    return GiftOrder.filter(membership_id__in=Subquery(access.memberships(p, action).values("id")))


async def get_order(
    principal: Principal | None, action: policy.Action, order_id: int, field: str = "orderId"
) -> GiftOrder:
    p = policy.require(principal, action)
    order = await orders_in_reach(p, action).filter(id=order_id).first()
    if order is None:
        raise NotFound("No such gift order.", field)
    return order


def orders(
    principal: Principal | None,
    brand_id: int | None = None,
    store_id: int | None = None,
    status: GiftOrderStatus | None = None,
) -> QuerySet[GiftOrder]:
    """HQ: its brand's orders; a store: the orders collected at it; platform: all. Filtered by brand,
    collecting store and status."""
    p = policy.require(principal, policy.LIST_GIFT_ORDERS)
    query = GiftOrder.filter(brand_id__in=Subquery(access.brands(p, policy.LIST_GIFT_ORDERS).values("id")))
    if p.role is Role.STORE:
        query = query.filter(store_id=p.store_id)
    if brand_id is not None:
        query = query.filter(brand_id=brand_id)
    if store_id is not None:
        query = query.filter(store_id=store_id)
    if status is not None:
        query = query.filter(status=status)
    return query


def orders_of(membership: Membership, status: GiftOrderStatus | None = None) -> QuerySet[GiftOrder]:
    query = GiftOrder.filter(membership_id=membership.id)
    return query if status is None else query.filter(status=status)


async def fulfil_order(principal: Principal | None, order_id: int, now: datetime | None = None) -> GiftOrder:
    """The collecting store hands the gift over: PLACED -> FULFILLED (again: the same answer)."""
    p = policy.require(principal, policy.FULFIL_GIFT_ORDER)
    order = await get_order(p, policy.FULFIL_GIFT_ORDER, order_id)
    if p.role is Role.STORE and order.store_id != p.store_id:
        raise NotFound("No such gift order.", "orderId")  # another store's orders are not its to hand over
    if order.status == GiftOrderStatus.PLACED:
        # Conditional: a cancellation racing with this one wins or loses as a whole.
        await GiftOrder.filter(id=order.id, status=GiftOrderStatus.PLACED).update(
            status=GiftOrderStatus.FULFILLED, fulfilled_at=now or datetime.now(UTC)
        )
        order = await GiftOrder.get(id=order.id)
    if order.status == GiftOrderStatus.CANCELLED:
        raise DomainError(ErrorCode.ORDER_CLOSED, "This order was cancelled.", "orderId")
    return order


def _cancel_command(order: GiftOrder, brand: Brand, expires_at: datetime | None) -> Command:
    legs: tuple[Leg, ...] = ()
    if order.points:
        member = AccountRef.member(brand.id, order.membership_id)
        lot = LotTerms(expires_at=expires_at)
        legs = (
            Leg(AccountRef.burn_for(brand.id, order.membership_id), -order.points),
            Leg(member, order.points, lot=lot),
        )
    guards = [Guard(order.stock_key, delta=-1)]
    if order.limit_key:
        guards.append(Guard(order.limit_key, delta=-1))
    return Command(
        kind=TransactionKind.GIFT_ORDER_CANCEL,
        brand_id=brand.id,
        legs=legs,
        # The order's own key: the points come back once, whoever cancels and however often.
        claim=claim(CANCEL_SCOPE, f"cancel:{order.id}", "cancelGiftOrder", order=order.id),
        membership_id=order.membership_id,
        reason=order.cancel_reason,
        details={"giftOrderId": order.id, "giftPoints": order.points},
        guards=tuple(guards),
        report=AccountRef.member(brand.id, order.membership_id),
    )


async def cancel_order(
    ledger: LedgerWriter,
    principal: Principal | None,
    order_id: int,
    reason: str = "",
    now: datetime | None = None,
) -> OrderResult:
    """HQ, a store of the brand, or the member cancels an order not yet collected: CANCELLED, and the
    points and the counts come back once (cancelling again answers the same)."""
    p = policy.require(principal, policy.CANCEL_GIFT_ORDER)
    reason = v.text(reason, "reason", required=False)
    now = now or datetime.now(UTC)
    order = await get_order(p, policy.CANCEL_GIFT_ORDER, order_id)
    if order.status == GiftOrderStatus.PLACED:
        await GiftOrder.filter(id=order.id, status=GiftOrderStatus.PLACED).update(
            status=GiftOrderStatus.CANCELLED, cancelled_at=now, cancel_reason=reason
        )
        order = await GiftOrder.get(id=order.id)
    if order.status == GiftOrderStatus.FULFILLED:
        raise DomainError(ErrorCode.ORDER_CLOSED, "This order was already collected.", "orderId")
    # Cancelled (now, or before): post the return, or replay it if it was posted. A cancellation whose
    # process died between the status and the ledger is completed by the next call.
    brand = await Brand.get(id=order.brand_id)
    # Returned points are new points to the member: they expire by the brand's policy in force now.
    outcome = await ledger.submit(_cancel_command(order, brand, await expires_at_for(brand, now)))
    if order.cancel_transaction_id is None:
        await GiftOrder.filter(id=order.id, cancel_transaction_id=None).update(
            cancel_transaction_id=outcome.transaction.id
        )
        order = await GiftOrder.get(id=order.id)
    return OrderResult(order, outcome.transaction, outcome.report_balance, outcome.replayed)


# --- audit ------------------------------------------------------------------------------------------


def _paid(transaction: str) -> str:
    """SQL: the points a transaction took from the order's member (negative: gave)."""
    return (
        "COALESCE((SELECT -SUM(p.amount) FROM posting p JOIN account a ON a.id = p.account_id"
        f" WHERE p.transaction_id = {transaction} AND a.kind = 'member' AND a.asset = 'points'"
        " AND a.membership_id = o.membership_id), 0)"
    )


# SQL: the orders of an item that hold stock (not cancelled, or cancelled but not yet returned).
_HOLDING = "SELECT COUNT(*) FROM gift_order o WHERE o.item_id = i.id AND o.cancel_transaction_id IS NULL"
_COUNTED = "SUM(CASE WHEN o.cancel_transaction_id IS NULL THEN 1 ELSE 0 END)"


def audit_queries(brand: str) -> dict[str, str]:
    """Order invariants against the ledger: check name -> query of (subject, detail) rows. ``brand``
    is a condition on ``brand_id``."""
    paid, returned = _paid("o.transaction_id"), _paid("o.cancel_transaction_id")
    return {
        # Every order transaction has its order row.
        "GIFT_ORDER_UNRECORDED": f"""
            SELECT 'transaction ' || t.id, 'gift order transaction without its order row'
            FROM ledger_transaction t WHERE t.{brand} AND t.kind = 'gift_order'
              AND NOT EXISTS (SELECT 1 FROM gift_order o WHERE o.transaction_id = t.id)""",
        # An order's points are what its transaction took from the member (an order placed by another
        # command, a lottery prize, was given: its transaction's points paid for something else).
        "GIFT_ORDER_POINTS": f"""
            SELECT 'gift order ' || o.id, 'points ' || o.points || ', paid ' || {paid}
            FROM gift_order o JOIN ledger_transaction t ON t.id = o.transaction_id
            WHERE o.{brand} AND t.kind = 'gift_order' AND o.points <> {paid}""",
        # A cancelled order gave exactly its points back, in its one cancellation transaction.
        "GIFT_ORDER_NOT_RETURNED": f"""
            SELECT 'gift order ' || o.id, 'returned ' || COALESCE(-{returned}, 0) || ' of ' || o.points
            FROM gift_order o WHERE o.{brand} AND o.status = 'cancelled'
              AND (o.cancel_transaction_id IS NULL OR -{returned} <> o.points)""",
        "GIFT_ORDER_RETURNED_OPEN": f"""
            SELECT 'gift order ' || o.id, 'status ' || o.status || ' with a cancellation transaction'
            FROM gift_order o WHERE o.{brand} AND o.status <> 'cancelled'
              AND o.cancel_transaction_id IS NOT NULL""",
        # Each item's stock counter equals its orders not cancelled.
        "GIFT_STOCK_COUNT": f"""
            SELECT 'gift item ' || i.id,
                   'counted ' || COALESCE(MAX(c.value), 0) || ', orders ' || ({_HOLDING})
            FROM gift_item i LEFT JOIN ledger_counter c ON c.key = 'gift:stock:i' || i.id
            WHERE i.{brand} GROUP BY i.id HAVING COALESCE(MAX(c.value), 0) <> ({_HOLDING})""",
        # Each member's period counter equals the orders counted in it.
        "GIFT_LIMIT_COUNT": f"""
            SELECT 'counter ' || o.limit_key,
                   'counted ' || COALESCE(MAX(c.value), 0) || ', orders ' || {_COUNTED}
            FROM gift_order o LEFT JOIN ledger_counter c ON c.key = o.limit_key
            WHERE o.{brand} AND o.limit_key <> '' GROUP BY o.limit_key
            HAVING COALESCE(MAX(c.value), 0) <> {_COUNTED}""",
    }


async def audit(brand_id: int | None) -> list[Violation]:
    """The gift order checks of one brand (or all): one violation per offending row."""
    brand = f"brand_id = {int(brand_id)}" if brand_id is not None else "brand_id IS NOT NULL"
    conn = connections.get("default")
    found: list[Violation] = []
    for check, query in audit_queries(brand).items():
        _, rows = await conn.execute_query(query)
        found.extend(Violation(check, str(row[0]), str(row[1])) for row in rows)
    return found

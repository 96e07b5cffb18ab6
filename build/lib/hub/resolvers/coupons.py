"""Coupons: templates HQ defines, coupons issued to members, and what one takes off a bill.

A coupon is one unit of the ledger asset ``coupon`` whose asset code is its template's code: a lot of 1
on the member's coupon account, expiring when the coupon does. Issuing credits that lot from the
brand's coupon issuance (``coupon_issue`` below: the legs and guard any command can carry, so a lottery
prize or a points purchase issues coupons in its own transaction); using one draws exactly that lot
to the burn account, so a second use of one coupon fails in the engine (ALREADY_USED) however many
tills try at once, and the ledger audit proves each coupon was drawn at most once. A coupon's id is its
lot's id. See docs/spending.md, "Coupons".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.db import sql
from hub.domain import CouponKind, Role
from hub.errors import DomainError, ErrorCode, InvalidInput, NotFound
from hub.ledger.accounts import ASSET_CODE, AccountRef
from hub.ledger.audit import Violation
from hub.ledger.commands import Command, Guard, Leg, LotTerms, TransactionRecord
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.ledger.sql import as_datetime
from hub.models import Asset, Brand, CouponTemplate, Membership, Store, TransactionKind
from hub.resolvers import access, change_log
from hub.resolvers import validation as v
from hub.resolvers.claims import submit_once

MAX_ISSUE = 10  # coupons one request may issue to one member
MAX_VALID_DAYS = 3650
MAX_STORES = 500


# --- templates --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TemplateTerms:
    """What a template's coupons take off a bill, and when, where and how they are issued."""

    kind: CouponKind
    amount_off_fen: int = 0
    min_bill_fen: int = 0
    percent_off_bp: int = 0
    max_off_fen: int | None = None
    free_item_sku: str = ""
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int | None = None
    store_ids: tuple[int, ...] = ()
    points_price: int | None = None
    quantity: int | None = None


def _amount(value: int, field: str, *, minimum: int = 0) -> int:
    if not minimum <= value <= v.MAX_AMOUNT:
        raise InvalidInput(f"Must be between {minimum} and {v.MAX_AMOUNT}.", field)
    return value


def _utc(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInput("Give a time zone (e.g. 2026-12-31T23:59:59+08:00).", field)
    return value.astimezone(UTC)


def check_terms(terms: TemplateTerms) -> TemplateTerms:
    """The terms, checked field by field (INVALID_INPUT naming the field), times in UTC."""
    kind = terms.kind
    amount_off = _amount(terms.amount_off_fen, "amountOffFen")
    min_bill = _amount(terms.min_bill_fen, "minBillFen")
    percent = terms.percent_off_bp
    cap = None if terms.max_off_fen is None else _amount(terms.max_off_fen, "maxOffFen", minimum=1)
    sku = v.text(terms.free_item_sku, "freeItemSku", max_length=64, required=False)
    if kind is CouponKind.AMOUNT_OFF:
        _amount(amount_off, "amountOffFen", minimum=1)
        if percent or sku or cap is not None:
            raise InvalidInput("An amount-off coupon takes amountOffFen (and minBillFen) only.", "kind")
    elif kind is CouponKind.PERCENT_OFF:
        if not 1 <= percent <= 10_000:
            raise InvalidInput("Between 1 and 10000 basis points (100 = 1 %).", "percentOffBasisPoints")
        if amount_off or sku:
            raise InvalidInput("A percent-off coupon takes percentOffBasisPoints and maxOffFen.", "kind")
    else:
        if not sku:
            raise InvalidInput("Name the SKU of the free item.", "freeItemSku")
        if amount_off or percent:
            raise InvalidInput("A free-item coupon takes freeItemSku (and maxOffFen).", "kind")
    valid_from = _utc(terms.valid_from, "validFrom")
    valid_until = _utc(terms.valid_until, "validUntil")
    if valid_from and valid_until and valid_until <= valid_from:
        raise InvalidInput("validUntil must come after validFrom.", "validUntil")
    if terms.valid_days is not None and not 1 <= terms.valid_days <= MAX_VALID_DAYS:
        raise InvalidInput(f"Between 1 and {MAX_VALID_DAYS} days.", "validDays")
    if len(terms.store_ids) > MAX_STORES:
        raise InvalidInput(f"At most {MAX_STORES} stores.", "storeIds")
    price = None if terms.points_price is None else _amount(terms.points_price, "pointsPrice", minimum=1)
    quantity = None if terms.quantity is None else _amount(terms.quantity, "quantity", minimum=1)
    return TemplateTerms(
        kind,
        amount_off,
        min_bill,
        percent,
        cap,
        sku,
        valid_from,
        valid_until,
        terms.valid_days,
        tuple(sorted(set(terms.store_ids))),
        price,
        quantity,
    )


async def _check_stores(brand_id: int, store_ids: Sequence[int]) -> None:
    if store_ids and await Store.filter(brand_id=brand_id, id__in=list(store_ids)).count() != len(store_ids):
        raise NotFound("No such store in this brand.", "storeIds")


def _fields(terms: TemplateTerms) -> dict[str, Any]:
    return {
        "kind": terms.kind,
        "amount_off_fen": terms.amount_off_fen,
        "min_bill_fen": terms.min_bill_fen,
        "percent_off_bp": terms.percent_off_bp,
        "max_off_fen": terms.max_off_fen,
        "free_item_sku": terms.free_item_sku,
        "valid_from": terms.valid_from,
        "valid_until": terms.valid_until,
        "valid_days": terms.valid_days,
        "store_ids": list(terms.store_ids),
        "points_price": terms.points_price,
        "quantity": terms.quantity,
    }


def _same(template: CouponTemplate, name: str, fields: dict[str, Any]) -> bool:
    return template.name == name and all(getattr(template, k) == want for k, want in fields.items())


async def create_template(
    principal: Principal | None, brand_id: int, code: str, name: str, terms: TemplateTerms
) -> tuple[CouponTemplate, bool]:
    """HQ defines a coupon template. The code is its natural key: sending the same template again
    answers the existing one (created=False); another template with a taken code is ALREADY_EXISTS."""
    p = policy.require(principal, policy.MANAGE_COUPONS)
    brand = await access.get_brand(p, policy.MANAGE_COUPONS, brand_id)
    code = v.text(code, "code", max_length=32)
    if not ASSET_CODE.fullmatch(code):
        raise InvalidInput(
            "Lower-case letters, digits, '_', '.', '-'; starting with a letter or digit.", "code"
        )
    name = v.text(name, "name", max_length=100)
    terms = check_terms(terms)
    await _check_stores(brand.id, terms.store_ids)
    fields = _fields(terms)
    existing = await CouponTemplate.get_or_none(brand_id=brand.id, code=code)
    if existing is None:
        try:
            async with in_transaction() as conn:
                made = await CouponTemplate.create(
                    brand_id=brand.id, code=code, name=name, **fields, using_db=conn
                )
                after = {"code": code, "name": name, **fields}
                await change_log.record(p, policy.MANAGE_COUPONS, made, after=after, using_db=conn)
            return made, True
        except IntegrityError:  # created at the same moment by a retry of this request
            existing = await CouponTemplate.get(brand_id=brand.id, code=code)
    if _same(existing, name, fields):
        return existing, False
    raise DomainError(
        ErrorCode.ALREADY_EXISTS, "This brand already has a coupon template with that code.", "code"
    )


UNSET: Any = object()


async def update_template(
    principal: Principal | None,
    template_id: int,
    *,
    name: str | None = None,
    active: bool | None = None,
    points_price: int | None = UNSET,
    store_ids: Sequence[int] | None = None,
    quantity: int | None = UNSET,
) -> CouponTemplate:
    """HQ changes how a template's coupons are offered. What a coupon takes off and its validity are
    fixed once created (coupons already issued carry them); fields left out keep their value."""
    p = policy.require(principal, policy.MANAGE_COUPONS)
    template = await get_template(p, policy.MANAGE_COUPONS, template_id, "templateId")
    before = change_log.snapshot(template, TEMPLATE_OFFER)
    if name is not None:
        template.name = v.text(name, "name", max_length=100)
    if active is not None:
        template.active = active
    if points_price is not UNSET:
        template.points_price = (
            None if points_price is None else _amount(points_price, "pointsPrice", minimum=1)
        )
    if store_ids is not None:
        if len(store_ids) > MAX_STORES:
            raise InvalidInput(f"At most {MAX_STORES} stores.", "storeIds")
        ids = sorted(set(store_ids))
        await _check_stores(template.brand_id, ids)
        template.store_ids = ids
    if quantity is not UNSET:
        # A quantity below what was already issued only stops further issues.
        template.quantity = None if quantity is None else _amount(quantity, "quantity", minimum=1)
    async with in_transaction() as conn:
        await template.save(using_db=conn)
        after = change_log.snapshot(template, TEMPLATE_OFFER)
        await change_log.record(p, policy.MANAGE_COUPONS, template, before=before, after=after, using_db=conn)
    return template


# What update_template may change, as the change log keeps it.
TEMPLATE_OFFER = ("name", "active", "points_price", "store_ids", "quantity")


def templates(principal: Principal | None, brand_id: int | None = None) -> QuerySet[CouponTemplate]:
    """Templates of the brands in the caller's reach (a member: the brands it belongs to)."""
    query = CouponTemplate.filter(
        brand_id__in=Subquery(access.brands(principal, policy.READ_COUPON_TEMPLATES).values("id"))
    )
    return query if brand_id is None else query.filter(brand_id=brand_id)


async def get_template(
    principal: Principal | None, action: policy.Action, template_id: int, field: str = "id"
) -> CouponTemplate:
    # Any action that names a template (managing it, issuing or buying its coupons) reaches the
    # templates of the brands the caller reaches.
    p = policy.require(principal, action)
    template = await CouponTemplate.filter(
        id=template_id, brand_id__in=Subquery(access.brands_in_reach(p).values("id"))
    ).first()
    if template is None:
        raise NotFound("No such coupon template.", field)
    return template


async def issued_counts(template_ids: list[int]) -> list[int]:
    """How many coupons each template has issued (its guard counter; a DataLoader's batch)."""
    from hub.models import LedgerCounter

    rows = await LedgerCounter.filter(key__in=[issued_key(t) for t in template_ids])
    counts = {row.key: row.value for row in rows}
    return [counts.get(issued_key(t), 0) for t in template_ids]


# --- issuing ----------------------------------------------------------------------------------------


def issued_key(template_id: int) -> str:
    """The guard counting a template's issued coupons (its quantity is the maximum)."""
    return f"coupon:issued:t{template_id}"


def _end_of_local_day(moment: datetime, zone: str) -> datetime:
    local = moment.astimezone(ZoneInfo(zone))
    return datetime.combine(local.date() + timedelta(days=1), time(), ZoneInfo(zone)).astimezone(UTC)


def coupon_expiry(template: CouponTemplate, brand: Brand, issued_at: datetime) -> datetime | None:
    """When a coupon issued at ``issued_at`` stops being usable: the template's end, or the end of the
    brand-local day ``validDays`` days after issue (issued on the 1st with 7 days: usable through the
    8th), whichever comes first; None: it never expires."""
    ends = []
    if template.valid_until is not None:
        ends.append(template.valid_until)
    if template.valid_days is not None:
        ends.append(_end_of_local_day(issued_at + timedelta(days=template.valid_days), brand.timezone))
    return min(ends) if ends else None


@dataclass(frozen=True, slots=True)
class CouponIssue:
    """What issuing coupons adds to a ledger command: legs, the template's guard, and details."""

    legs: tuple[Leg, ...]
    guards: tuple[Guard, ...]
    details: dict[str, Any]
    expires_at: datetime | None


def coupon_issue(
    template: CouponTemplate,
    brand: Brand,
    membership_id: int,
    *,
    count: int = 1,
    now: datetime | None = None,
) -> CouponIssue:
    """The parts of a ledger command that issue ``count`` coupons of ``template`` to a membership.

    For any capability that issues coupons in its own transaction (a lottery prize, a reward, a points
    purchase): add ``legs`` and ``guards`` to the command and ``details`` to its details. Each coupon
    is its own lot of 1, expiring by the template's validity (``coupon_expiry``); the guard counts the
    template's issued coupons and refuses past its quantity (NOT_AVAILABLE). Raises NOT_AVAILABLE for a
    template that is inactive or whose validity is over. The membership must be of the template's brand.
    """
    now = now or datetime.now(UTC)
    if not 1 <= count <= MAX_ISSUE:
        raise InvalidInput(f"Between 1 and {MAX_ISSUE} coupons at a time.", "count")
    if brand.id != template.brand_id:
        raise ValueError("the template is not the brand's")
    if not template.active:
        raise DomainError(ErrorCode.NOT_AVAILABLE, "This coupon is not issued any more.", "templateId")
    expires_at = coupon_expiry(template, brand, now)
    if expires_at is not None and expires_at <= now:
        raise DomainError(ErrorCode.NOT_AVAILABLE, "This coupon's validity is over.", "templateId")
    code = template.code
    member = AccountRef.member(brand.id, membership_id, Asset.COUPON, code)
    issuance = AccountRef.issuance_for(brand.id, membership_id, Asset.COUPON, code)
    lot = LotTerms(expires_at=expires_at)
    legs = (Leg(issuance, -count), *(Leg(member, 1, lot=lot) for _ in range(count)))
    guard = Guard(
        issued_key(template.id),
        delta=count,
        maximum=template.quantity,
        code=ErrorCode.NOT_AVAILABLE,
        message="No coupons of this kind are left.",
        field="templateId",
    )
    details = {
        "couponTemplateId": template.id,
        "couponCode": code,
        "coupons": count,
        "couponExpiresAt": expires_at.isoformat() if expires_at else None,
    }
    return CouponIssue(legs, (guard,), details, expires_at)


@dataclass(frozen=True, slots=True)
class IssueResult:
    transaction: TransactionRecord
    membership: Membership
    coupons: list[CouponView]
    points_balance: int | None  # after a purchase with points
    replayed: bool


async def _issue(
    ledger: LedgerWriter,
    p: Principal,
    template: CouponTemplate,
    membership: Membership,
    count: int,
    key: str,
    request: dict[str, Any],
    *,
    price: int | None = 0,
    reason: str = "",
) -> IssueResult:
    brand: Brand = membership.brand
    points = AccountRef.member(brand.id, membership.id)
    request_claim = claim(p.idempotency_scope, key, **request)

    async def build() -> Command:
        # Checked only for a new request: a retry answers the first result even if the template was
        # stopped or sold out since (claims.submit_once).
        if membership.brand_id != template.brand_id:
            raise NotFound("No such coupon template.", "templateId")
        if price is None:
            raise DomainError(ErrorCode.NOT_AVAILABLE, "This coupon is not sold for points.", "templateId")
        issue = coupon_issue(template, brand, membership.id, count=count)
        legs = issue.legs
        if price:
            legs = (Leg(points, -price), Leg(AccountRef.burn_for(brand.id, membership.id), price), *legs)
        return Command(
            kind=TransactionKind.COUPON_ISSUE,
            brand_id=brand.id,
            legs=legs,
            claim=request_claim,
            store_id=p.store_id,
            membership_id=membership.id,
            actor_key_id=p.key_id,
            reason=reason,
            details={**issue.details, **({"pointsPaid": price} if price else {})},
            guards=issue.guards,
            report=points,
        )

    probe = Command(TransactionKind.COUPON_ISSUE, brand.id, (), request_claim, report=points)
    outcome = await submit_once(ledger, request_claim, brand.id, build, probe)
    return IssueResult(
        outcome.transaction,
        membership,
        await coupons_issued_by(outcome.transaction.id),
        outcome.report_balance if price else None,
        outcome.replayed,
    )


async def issue_coupons(
    ledger: LedgerWriter,
    principal: Principal | None,
    template_id: int,
    membership_id: int,
    count: int,
    reason: str,
    idempotency_key: str,
) -> IssueResult:
    """HQ gives a member coupons (a goodwill gesture, a campaign)."""
    p = policy.require(principal, policy.ISSUE_COUPONS)
    key = v.idempotency_key(idempotency_key)
    reason = v.text(reason, "reason")
    template = await get_template(p, policy.ISSUE_COUPONS, template_id, "templateId")
    membership = await access.get_membership(p, policy.ISSUE_COUPONS, membership_id)
    request = {
        "operation": "issueCoupons",
        "template": template.id,
        "membership": membership.id,
        "count": count,
        "reason": reason,
    }
    return await _issue(ledger, p, template, membership, count, key, request, reason=reason)


async def buy_coupon(
    ledger: LedgerWriter,
    principal: Principal | None,
    template_id: int,
    membership_id: int,
    idempotency_key: str,
) -> IssueResult:
    """A member (own token) or a store for a member buys one coupon at the template's points price."""
    p = policy.require(principal, policy.BUY_COUPON)
    key = v.idempotency_key(idempotency_key)
    template = await get_template(p, policy.BUY_COUPON, template_id, "templateId")
    membership = await access.get_membership(p, policy.BUY_COUPON, membership_id)
    # The price is the template's at the time, not part of the request: a retry after a price change
    # still answers the first purchase.
    request = {"operation": "buyCoupon", "template": template.id, "membership": membership.id}
    return await _issue(ledger, p, template, membership, 1, key, request, price=template.points_price)


# --- coupons held -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CouponView:
    """One coupon: a lot of 1 on a member's coupon account."""

    id: int  # the lot's id
    brand_id: int
    membership_id: int
    template_id: int
    code: str
    issued_at: datetime
    expires_at: datetime | None
    remaining: int  # 1 until used
    issued_by: int  # the transaction that issued it
    used_by: int | None  # the transaction that drew it
    used_kind: str | None

    def status(self, now: datetime | None = None) -> str:
        """AVAILABLE, USED (drawn by a checkout), or EXPIRED (past its end, or drawn by the expiry job)."""
        now = now or datetime.now(UTC)
        if self.remaining == 0:
            return "EXPIRED" if self.used_kind == TransactionKind.EXPIRE else "USED"
        if self.expires_at is not None and self.expires_at <= now:
            return "EXPIRED"
        return "AVAILABLE"


_COUPONS = (
    "SELECT l.id, a.brand_id, a.membership_id, ct.id AS template_id, a.asset_code, l.created_at,"
    " l.expires_at, l.remaining, l.transaction_id,"
    " (SELECT la.transaction_id FROM lot_allocation la WHERE la.lot_id = l.id"
    "  ORDER BY la.id LIMIT 1) AS used_by,"
    " (SELECT t.kind FROM lot_allocation la JOIN ledger_transaction t ON t.id = la.transaction_id"
    "  WHERE la.lot_id = l.id ORDER BY la.id LIMIT 1) AS used_kind"
    " FROM lot l JOIN account a ON a.id = l.account_id"
    " JOIN coupon_template ct ON ct.brand_id = a.brand_id AND ct.code = a.asset_code"
    " WHERE a.asset = 'coupon' AND a.kind = 'member'"
)


def _view(row: Any) -> CouponView:
    return CouponView(
        id=row["id"],
        brand_id=row["brand_id"],
        membership_id=row["membership_id"],
        template_id=row["template_id"],
        code=row["asset_code"],
        issued_at=as_datetime(row["created_at"]),  # type: ignore[arg-type]
        expires_at=as_datetime(row["expires_at"]),
        remaining=row["remaining"],
        issued_by=row["transaction_id"],
        used_by=row["used_by"],
        used_kind=row["used_kind"],
    )


def _time_arg(conn: Any, moment: datetime) -> Any:
    # SQLite keeps timestamps as the ISO text the engine wrote (hub.ledger.sql).
    return moment if conn.capabilities.dialect == "postgres" else moment.isoformat(" ")


async def _select(where: str, args: list[Any], tail: str = "") -> list[CouponView]:
    conn = connections.get("default")
    _, rows = await conn.execute_query(sql(conn, f"{_COUPONS} AND {where} {tail}"), args)
    return [_view(r) for r in rows]


async def coupons_issued_by(transaction_id: int) -> list[CouponView]:
    """The coupons a transaction created (issued, or returned by a refund), oldest first."""
    return await _select("l.transaction_id = ?", [transaction_id], "ORDER BY l.id")


# Status -> (condition, whether it takes the current time).
STATUS_FILTERS = {
    "AVAILABLE": ("l.remaining > 0 AND (l.expires_at IS NULL OR l.expires_at > ?)", True),
    "EXPIRED": ("l.remaining > 0 AND l.expires_at <= ?", True),
    "USED": ("l.remaining = 0", False),
}


@dataclass(frozen=True, slots=True)
class CouponPage:
    coupons: list[CouponView]
    has_next_page: bool
    has_previous_page: bool = False


async def coupons_of(
    membership: Membership,
    status: str | None,
    first: int,
    after: int | None,
    max_size: int,
    now: datetime | None = None,
) -> CouponPage:
    """A membership's coupons, newest first, optionally by status (USED includes those the expiry job
    drew; their ``status`` says EXPIRED)."""
    if not 0 <= first <= max_size:
        raise InvalidInput(f"first must be between 0 and {max_size}.", "first")
    conn = connections.get("default")
    where, args = ["a.membership_id = ?"], [membership.id]
    if status is not None:
        condition, timed = STATUS_FILTERS[status]
        where.append(condition)
        if timed:
            args.append(_time_arg(conn, now or datetime.now(UTC)))
    has_previous = False
    if after is not None:
        # Newer coupons of the same filter precede a page asked after a cursor: one probe.
        newer = " AND ".join([*where, "l.id >= ?"])
        has_previous = bool(await _select(newer, [*args, after], "LIMIT 1"))
        where.append("l.id < ?")
        args.append(after)
    found = await _select(" AND ".join(where), args, f"ORDER BY l.id DESC LIMIT {int(first) + 1}")
    return CouponPage(found[:first], len(found) > first, has_previous)


async def get_coupon(
    principal: Principal | None, action: policy.Action, coupon_id: int, field: str = "couponId"
) -> CouponView:
    """A coupon in the caller's reach (its membership's), or NOT_FOUND."""
    p = policy.require(principal, action)
    found = await _select("l.id = ?", [coupon_id])
    if not found:
        raise NotFound("No such coupon.", field)
    if p.role is not Role.PLATFORM:
        reach = access.memberships(p, action)
        if not await reach.filter(id=found[0].membership_id).exists():
            raise NotFound("No such coupon.", field)
    return found[0]


# --- using ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BillLine:
    """One line of a bill, as a coupon sees it."""

    amount_fen: int
    category: str = ""
    sku: str = ""


def discount_fen(
    template: CouponTemplate, bill_fen: int, lines: Sequence[BillLine], store_id: int | None
) -> int:
    """What the coupon takes off this bill, or COUPON_NOT_APPLICABLE.

    AMOUNT_OFF: its amount (never more than the bill). PERCENT_OFF: floor(bill × bp / 10000), up to
    the cap. FREE_ITEM: the dearest line with its SKU, up to the cap. Every kind needs the bill to reach
    its minimum and the store to be one of its stores (none listed: any store of the brand).
    """
    if template.store_ids and store_id not in template.store_ids:
        raise DomainError(
            ErrorCode.COUPON_NOT_APPLICABLE, "This coupon is not valid at this store.", "couponId"
        )
    if bill_fen < template.min_bill_fen:
        raise DomainError(
            ErrorCode.COUPON_NOT_APPLICABLE,
            f"This coupon needs a bill of at least {template.min_bill_fen} fen.",
            "couponId",
        )
    if template.kind is CouponKind.AMOUNT_OFF:
        off = template.amount_off_fen
    elif template.kind is CouponKind.PERCENT_OFF:
        off = bill_fen * template.percent_off_bp // 10_000
    else:
        prices = [line.amount_fen for line in lines if line.sku == template.free_item_sku]
        if not prices:
            raise DomainError(
                ErrorCode.COUPON_NOT_APPLICABLE, "The bill has no item this coupon makes free.", "couponId"
            )
        off = max(prices)
    if template.max_off_fen is not None:
        off = min(off, template.max_off_fen)
    return min(off, bill_fen)


def check_usable(coupon: CouponView, template: CouponTemplate, now: datetime | None = None) -> None:
    """A coupon that is the member's may be used now: not used, within its validity."""
    now = now or datetime.now(UTC)
    if coupon.remaining == 0:
        raise DomainError(ErrorCode.ALREADY_USED, "This coupon was already used.", "couponId")
    if coupon.expires_at is not None and coupon.expires_at <= now:
        raise DomainError(ErrorCode.COUPON_EXPIRED, "This coupon has expired.", "couponId")
    if template.valid_from is not None and now < template.valid_from:
        raise DomainError(ErrorCode.COUPON_EXPIRED, "This coupon is not valid yet.", "couponId")


def use_legs(coupon: CouponView) -> tuple[Leg, ...]:
    """Legs that use one coupon: exactly its lot, to the burn account (ALREADY_USED if drawn since)."""
    member = AccountRef.member(coupon.brand_id, coupon.membership_id, Asset.COUPON, coupon.code)
    burn = AccountRef.burn_for(coupon.brand_id, coupon.membership_id, Asset.COUPON, coupon.code)
    return (Leg(member, -1, draw=(coupon.id,)), Leg(burn, 1))


def return_legs(coupon: CouponView) -> tuple[Leg, ...]:
    """Legs that give a used coupon back (a full refund): a new lot of 1 with the same expiry."""
    member = AccountRef.member(coupon.brand_id, coupon.membership_id, Asset.COUPON, coupon.code)
    burn = AccountRef.burn_for(coupon.brand_id, coupon.membership_id, Asset.COUPON, coupon.code)
    return (Leg(burn, -1), Leg(member, 1, lot=LotTerms(expires_at=coupon.expires_at)))


# --- audit ------------------------------------------------------------------------------------------


def audit_queries(brand: str) -> dict[str, str]:
    """Coupon invariants beyond the ledger's own (which already proves each lot drawn at most its
    amount): check name -> query of (subject, detail) rows. ``brand`` is a condition on ``brand_id``."""
    return {
        # A coupon is exactly one unit: every lot on a member's coupon account was credited as 1.
        "COUPON_NOT_ONE_UNIT": f"""
            SELECT 'lot ' || l.id, 'amount ' || l.amount
            FROM lot l JOIN account a ON a.id = l.account_id
            WHERE a.asset = 'coupon' AND a.kind = 'member' AND a.{brand} AND l.amount <> 1""",
        # Every coupon account belongs to a template of its brand.
        "COUPON_WITHOUT_TEMPLATE": f"""
            SELECT 'account ' || a.id, 'asset code ' || a.asset_code
            FROM account a WHERE a.asset = 'coupon' AND a.{brand} AND NOT EXISTS (
                SELECT 1 FROM coupon_template ct
                WHERE ct.brand_id = a.brand_id AND ct.code = a.asset_code)""",
        # The template's issue counter (its quantity guard) equals what its issuance accounts issued.
        "COUPON_ISSUE_COUNT": f"""
            SELECT 'coupon template ' || ct.id,
                   'issued ' || (0 - COALESCE(SUM(a.balance), 0)) || ', counted ' || COALESCE(MAX(c.value), 0)
            FROM coupon_template ct
            LEFT JOIN account a ON a.brand_id = ct.brand_id AND a.asset = 'coupon'
                AND a.asset_code = ct.code AND a.kind = 'issuance'
            LEFT JOIN ledger_counter c ON c.key = 'coupon:issued:t' || ct.id
            WHERE ct.{brand}
            GROUP BY ct.id HAVING 0 - COALESCE(SUM(a.balance), 0) <> COALESCE(MAX(c.value), 0)""",
    }


async def audit(brand_id: int | None) -> list[Violation]:
    """The coupon checks of one brand (or all): one violation per offending row."""
    brand = f"brand_id = {int(brand_id)}" if brand_id is not None else "brand_id IS NOT NULL"
    conn = connections.get("default")
    found: list[Violation] = []
    for check, query in audit_queries(brand).items():
        _, rows = await conn.execute_query(query)
        found.extend(Violation(check, str(row[0]), str(row[1])) for row in rows)
    return found

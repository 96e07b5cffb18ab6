"""Service passes (次卡): pass products HQ sells, passes members hold, visits that use them.

A pass is one lot of the ledger asset ``service_pass`` whose asset code is its product's code: ``uses``
units on the member's pass account, expiring at the end of the brand-local day ``validDays`` after the
sale. A pass's id is its lot's id.

- **Selling** one (``buy_pass``) is one transaction (kind ``pass_sale``): the lot credited from the
  brand's pass issuance (``pass_issue``: the legs any command can carry, e.g. a partner's offer), and
  the price taken in the same transaction: points to the burn account, stored value by the wallet's
  rule (``wallets.post_spend``), or cash paid at the store, recorded with its payment reference.
- **A visit** (``use_pass``, a store, with its idempotency key per visit) draws one unit of exactly that
  lot to the burn account. The engine locks the account and fails a draw the lot no longer covers, so
  of many tills using the last use at once exactly one succeeds (PASS_USED_UP for the others).
- **Expiry**: a pass past its end cannot be used (PASS_EXPIRED) and shows no uses left; the lifecycle
  worker's expiry job (docs/lifecycle.md) draws what is left of due lots of every asset, passes too.

See docs/spending.md, "Service passes".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from hub import policy
from hub.auth import Principal
from hub.db import sql
from hub.domain import PassPayment, Role
from hub.errors import DomainError, ErrorCode, InvalidInput, NotFound
from hub.ledger.accounts import ASSET_CODE, AccountRef
from hub.ledger.audit import Violation
from hub.ledger.commands import Command, Leg, LotTerms, Outcome, TransactionRecord
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.ledger.sql import as_datetime
from hub.models import Asset, Brand, Membership, PassProduct, TransactionKind
from hub.resolvers import access, wallets
from hub.resolvers import validation as v
from hub.resolvers.claims import claimed, submit_once

MAX_USES = 1_000
MAX_VALID_DAYS = 3_650
MAX_REFERENCE = 64


# --- products ---------------------------------------------------------------------------------------


def _price(value: int | None, field: str) -> int | None:
    if value is not None and not 1 <= value <= v.MAX_AMOUNT:
        raise InvalidInput(f"Between 1 and {v.MAX_AMOUNT}, or null: not sold so.", field)
    return value


async def create_product(
    principal: Principal | None,
    brand_id: int,
    code: str,
    name: str,
    uses: int,
    valid_days: int,
    price_fen: int | None,
    points_price: int | None,
) -> tuple[PassProduct, bool]:
    """HQ defines a pass product. The code is its natural key (the same product again: created=False;
    another with a taken code: ALREADY_EXISTS). Its uses and validity are fixed once created."""
    brand = await access.get_brand(principal, policy.MANAGE_PASSES, brand_id)
    code = v.text(code, "code", max_length=32)
    if not ASSET_CODE.fullmatch(code):
        raise InvalidInput(
            "Lower-case letters, digits, '_', '.', '-'; starting with a letter or digit.", "code"
        )
    name = v.text(name, "name", max_length=100)
    if not 1 <= uses <= MAX_USES:
        raise InvalidInput(f"Between 1 and {MAX_USES}.", "uses")
    if not 1 <= valid_days <= MAX_VALID_DAYS:
        raise InvalidInput(f"Between 1 and {MAX_VALID_DAYS} days.", "validDays")
    fields: dict[str, Any] = {
        "name": name,
        "uses": uses,
        "valid_days": valid_days,
        "price_fen": _price(price_fen, "priceFen"),
        "points_price": _price(points_price, "pointsPrice"),
    }
    existing = await PassProduct.get_or_none(brand_id=brand.id, code=code)
    if existing is None:
        try:
            return await PassProduct.create(brand_id=brand.id, code=code, **fields), True
        except IntegrityError:  # created at the same moment by a retry of this request
            existing = await PassProduct.get(brand_id=brand.id, code=code)
    if all(getattr(existing, k) == want for k, want in fields.items()):
        return existing, False
    raise DomainError(
        ErrorCode.ALREADY_EXISTS, "This brand already has a pass product with that code.", "code"
    )


UNSET: Any = object()


async def update_product(
    principal: Principal | None,
    product_id: int,
    *,
    name: str | None = None,
    active: bool | None = None,
    price_fen: int | None = UNSET,
    points_price: int | None = UNSET,
) -> PassProduct:
    """HQ renames a product, stops selling it, or changes its prices (for sales from now on)."""
    product = await get_product(principal, policy.MANAGE_PASSES, product_id, "productId")
    if name is not None:
        product.name = v.text(name, "name", max_length=100)
    if active is not None:
        product.active = active
    if price_fen is not UNSET:
        product.price_fen = _price(price_fen, "priceFen")
    if points_price is not UNSET:
        product.points_price = _price(points_price, "pointsPrice")
    await product.save()
    return product


def products(principal: Principal | None, brand_id: int | None = None) -> QuerySet[PassProduct]:
    """Pass products of the brands in the caller's reach."""
    reach = access.brands(principal, policy.READ_PASS_PRODUCTS).values("id")
    query = PassProduct.filter(brand_id__in=Subquery(reach))
    return query if brand_id is None else query.filter(brand_id=brand_id)


async def get_product(
    principal: Principal | None, action: policy.Action, product_id: int, field: str = "id"
) -> PassProduct:
    p = policy.require(principal, action)
    product = await PassProduct.filter(
        id=product_id, brand_id__in=Subquery(access.brands_in_reach(p).values("id"))
    ).first()
    if product is None:
        raise NotFound("No such pass product.", field)
    return product


# --- selling ----------------------------------------------------------------------------------------


def pass_expiry(product: PassProduct, brand: Brand, sold_at: datetime) -> datetime:
    """The end of the brand-local day ``validDays`` after the sale (sold on the 1st for 30 days: usable
    through the 31st)."""
    zone = ZoneInfo(brand.timezone)
    last = (sold_at.astimezone(zone) + timedelta(days=product.valid_days)).date()
    return datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class PassIssue:
    """What issuing one pass adds to a ledger command: its legs and details."""

    legs: tuple[Leg, ...]
    details: dict[str, Any]
    expires_at: datetime


def pass_issue(
    product: PassProduct, brand: Brand, membership_id: int, now: datetime | None = None
) -> PassIssue:
    """The parts of a ledger command that give a membership one pass of ``product``: its uses as one
    lot from the brand's pass issuance, expiring by ``pass_expiry``. For any capability that issues a
    pass in its own transaction (a partner's offer); the command pays for it as it sees fit. Raises
    NOT_AVAILABLE for a product HQ stopped. The membership must be of the product's brand."""
    now = now or datetime.now(UTC)
    if brand.id != product.brand_id:
        raise ValueError("the product is not the brand's")
    if not product.active:
        raise DomainError(ErrorCode.NOT_AVAILABLE, "This pass is not sold any more.", "productId")
    expires_at = pass_expiry(product, brand, now)
    member = AccountRef.member(brand.id, membership_id, Asset.SERVICE_PASS, product.code)
    issuance = AccountRef.issuance_for(brand.id, membership_id, Asset.SERVICE_PASS, product.code)
    legs = (Leg(issuance, -product.uses), Leg(member, product.uses, lot=LotTerms(expires_at=expires_at)))
    details = {
        "passProductId": product.id,
        "passCode": product.code,
        "passUses": product.uses,
        "passExpiresAt": expires_at.isoformat(),
    }
    return PassIssue(legs, details, expires_at)


@dataclass(frozen=True, slots=True)
class SaleResult:
    transaction: TransactionRecord
    service_pass: PassView
    replayed: bool


def _reference(value: str | None, payment: PassPayment) -> str:
    if payment is not PassPayment.CASH:
        if value:
            raise InvalidInput("Only a cash sale takes a payment reference.", "paymentReference")
        return ""
    return v.text(value or "", "paymentReference", max_length=MAX_REFERENCE)


async def buy_pass(
    ledger: LedgerWriter,
    principal: Principal | None,
    product_id: int,
    membership_id: int,
    payment: PassPayment,
    payment_reference: str | None,
    idempotency_key: str,
    now: datetime | None = None,
) -> SaleResult:
    """A store sells a pass (cash paid at the till, stored value or points), or a member buys one with
    its own token (stored value or points): one transaction, the pass and its payment."""
    p = policy.require(principal, policy.BUY_PASS)
    key = v.idempotency_key(idempotency_key)
    payment = PassPayment(payment)
    if payment is PassPayment.CASH and p.role is not Role.STORE:
        raise InvalidInput("Cash is paid at a store: the store records the sale.", "payment")
    reference = _reference(payment_reference, payment)
    product = await get_product(p, policy.BUY_PASS, product_id, "productId")
    membership = await access.get_membership(p, policy.BUY_PASS, membership_id)
    if product.brand_id != membership.brand_id:
        raise NotFound("No such pass product.", "productId")
    brand: Brand = membership.brand
    request_claim = claim(
        p.idempotency_scope,
        key,
        "buyServicePass",
        product=product.id,
        membership=membership.id,
        payment=payment.value,
        reference=reference,
    )
    moment = now or datetime.now(UTC)

    def price() -> int:
        value = product.points_price if payment is PassPayment.POINTS else product.price_fen
        if value is None:
            raise DomainError(
                ErrorCode.NOT_AVAILABLE, f"This pass is not sold for {payment.value}.", "payment"
            )
        return value

    def command(paid: tuple[Leg, ...], paid_details: dict[str, Any]) -> Command:
        issue = pass_issue(product, brand, membership.id, moment)
        return Command(
            kind=TransactionKind.PASS_SALE,
            brand_id=brand.id,
            legs=(*issue.legs, *paid),
            claim=request_claim,
            store_id=p.store_id,
            membership_id=membership.id,
            actor_key_id=p.key_id,
            reason=product.name,
            details={**issue.details, "payment": payment.value, **paid_details},
        )

    probe = Command(TransactionKind.PASS_SALE, brand.id, (), request_claim)
    if payment is PassPayment.STORED_VALUE and not await claimed(request_claim):
        fen = price()
        pass_issue(product, brand, membership.id, moment)  # refuse a stopped product before reading
        outcome, _ = await wallets.post_spend(
            ledger, membership, fen, lambda spend: command(spend.legs, {"priceFen": fen, **spend.details})
        )
    else:

        async def build() -> Command:
            amount = price()
            if payment is PassPayment.POINTS:
                points = AccountRef.member(brand.id, membership.id)
                burn = AccountRef.burn_for(brand.id, membership.id)
                return command((Leg(points, -amount), Leg(burn, amount)), {"pointsPaid": amount})
            return command((), {"priceFen": amount, "paymentReference": reference})

        outcome = await submit_once(ledger, request_claim, brand.id, build, probe)
    (sold,) = await passes_issued_by(outcome.transaction.id)
    return SaleResult(outcome.transaction, sold, outcome.replayed)


# --- passes held ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PassView:
    """One pass: a lot of ``uses`` units on a member's pass account."""

    id: int  # the lot's id
    brand_id: int
    membership_id: int
    product_id: int
    code: str
    sold_at: datetime
    expires_at: datetime | None
    uses: int
    remaining: int
    sold_by: int  # the sale's transaction
    expired_by_job: bool

    def expired(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return self.expired_by_job or (
            self.remaining > 0 and self.expires_at is not None and self.expires_at <= now
        )

    def uses_left(self, now: datetime | None = None) -> int:
        return 0 if self.expired(now) else self.remaining

    def status(self, now: datetime | None = None) -> str:
        if self.expired(now):
            return "EXPIRED"
        return "USED_UP" if self.remaining == 0 else "ACTIVE"


_EXPIRED_BY_JOB = (
    "EXISTS (SELECT 1 FROM lot_allocation la JOIN ledger_transaction t ON t.id = la.transaction_id"
    " WHERE la.lot_id = l.id AND t.kind = 'expire')"
)
_PASSES = (
    "SELECT l.id, a.brand_id, a.membership_id, pp.id AS product_id, a.asset_code, l.created_at,"
    f" l.expires_at, l.amount, l.remaining, l.transaction_id, {_EXPIRED_BY_JOB} AS expired_by_job"
    " FROM lot l JOIN account a ON a.id = l.account_id"
    " JOIN pass_product pp ON pp.brand_id = a.brand_id AND pp.code = a.asset_code"
    " WHERE a.asset = 'service_pass' AND a.kind = 'member'"
)


def _view(row: Any) -> PassView:
    return PassView(
        id=row["id"],
        brand_id=row["brand_id"],
        membership_id=row["membership_id"],
        product_id=row["product_id"],
        code=row["asset_code"],
        sold_at=as_datetime(row["created_at"]),  # type: ignore[arg-type]
        expires_at=as_datetime(row["expires_at"]),
        uses=row["amount"],
        remaining=row["remaining"],
        sold_by=row["transaction_id"],
        expired_by_job=bool(row["expired_by_job"]),
    )


def _time_arg(conn: Any, moment: datetime) -> Any:
    # SQLite keeps timestamps as the ISO text the engine wrote (hub.ledger.sql).
    return moment if conn.capabilities.dialect == "postgres" else moment.isoformat(" ")


async def _select(where: str, args: list[Any], tail: str = "") -> list[PassView]:
    conn = connections.get("default")
    _, rows = await conn.execute_query(sql(conn, f"{_PASSES} AND {where} {tail}"), args)
    return [_view(r) for r in rows]


async def passes_issued_by(transaction_id: int) -> list[PassView]:
    """The passes a transaction issued, oldest first."""
    return await _select("l.transaction_id = ?", [transaction_id], "ORDER BY l.id")


# Status -> (condition, whether it takes the current time).
STATUS_FILTERS = {
    "ACTIVE": (
        f"l.remaining > 0 AND (l.expires_at IS NULL OR l.expires_at > ?) AND NOT {_EXPIRED_BY_JOB}",
        True,
    ),
    "EXPIRED": (f"((l.remaining > 0 AND l.expires_at <= ?) OR {_EXPIRED_BY_JOB})", True),
    "USED_UP": (f"l.remaining = 0 AND NOT {_EXPIRED_BY_JOB}", False),
}


@dataclass(frozen=True, slots=True)
class PassPage:
    passes: list[PassView]
    has_next_page: bool


async def passes_of(
    membership: Membership,
    status: str | None,
    first: int,
    after: int | None,
    max_size: int,
    now: datetime | None = None,
) -> PassPage:
    """A membership's passes, newest first, optionally by status."""
    if not 0 <= first <= max_size:
        raise InvalidInput(f"first must be between 0 and {max_size}.", "first")
    conn = connections.get("default")
    where, args = ["a.membership_id = ?"], [membership.id]
    if status is not None:
        condition, timed = STATUS_FILTERS[status]
        where.append(condition)
        if timed:
            args.append(_time_arg(conn, now or datetime.now(UTC)))
    if after is not None:
        where.append("l.id < ?")
        args.append(after)
    found = await _select(" AND ".join(where), args, f"ORDER BY l.id DESC LIMIT {int(first) + 1}")
    return PassPage(found[:first], len(found) > first)


async def get_pass(
    principal: Principal | None, action: policy.Action, pass_id: int, field: str = "passId"
) -> PassView:
    """A pass of a membership in the caller's reach, or NOT_FOUND."""
    p = policy.require(principal, action)
    found = await _select("l.id = ?", [pass_id])
    if not found:
        raise NotFound("No such service pass.", field)
    if p.role is not Role.PLATFORM:
        if not await access.memberships(p, action).filter(id=found[0].membership_id).exists():
            raise NotFound("No such service pass.", field)
    return found[0]


# --- visits -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VisitResult:
    transaction: TransactionRecord
    service_pass: PassView
    replayed: bool


async def use_pass(
    ledger: LedgerWriter,
    principal: Principal | None,
    pass_id: int,
    idempotency_key: str,
    now: datetime | None = None,
) -> VisitResult:
    """A store of the brand records a visit: one use of the pass, once per idempotency key."""
    p = policy.require(principal, policy.USE_PASS)
    key = v.idempotency_key(idempotency_key)
    held = await get_pass(p, policy.USE_PASS, pass_id)
    request_claim = claim(p.idempotency_scope, key, "useServicePass", service_pass=held.id)
    member = AccountRef.member(held.brand_id, held.membership_id, Asset.SERVICE_PASS, held.code)
    burn = AccountRef.burn_for(held.brand_id, held.membership_id, Asset.SERVICE_PASS, held.code)

    async def build() -> Command:
        moment = now or datetime.now(UTC)
        if held.expired(moment):
            raise DomainError(ErrorCode.PASS_EXPIRED, "This pass has expired.", "passId")
        if held.remaining == 0:
            raise DomainError(ErrorCode.PASS_USED_UP, "This pass has no uses left.", "passId")
        return Command(
            kind=TransactionKind.PASS_VISIT,
            brand_id=held.brand_id,
            # Exactly this pass's lot: the engine fails the draw when another visit took the last use.
            legs=(Leg(member, -1, draw=(held.id,)), Leg(burn, 1)),
            claim=request_claim,
            store_id=p.store_id,
            membership_id=held.membership_id,
            actor_key_id=p.key_id,
            reason="Service pass visit",
            details={"passId": held.id, "passCode": held.code},
            report=member,
        )

    probe = Command(TransactionKind.PASS_VISIT, held.brand_id, (), request_claim)
    try:
        outcome: Outcome = await submit_once(ledger, request_claim, held.brand_id, build, probe)
    except DomainError as error:
        if error.code is ErrorCode.ALREADY_USED:
            raise DomainError(ErrorCode.PASS_USED_UP, "This pass has no uses left.", "passId") from None
        raise
    (after,) = await _select("l.id = ?", [held.id])
    return VisitResult(outcome.transaction, after, outcome.replayed)


# --- audit ------------------------------------------------------------------------------------------


def audit_queries(brand: str) -> dict[str, str]:
    """Pass invariants beyond the ledger's own (which proves each lot drawn at most its amount and every
    balance equal to its lots): check name -> query of (subject, detail) rows."""
    return {
        # Every pass account belongs to a product of its brand.
        "PASS_WITHOUT_PRODUCT": f"""
            SELECT 'account ' || a.id, 'asset code ' || a.asset_code
            FROM account a WHERE a.asset = 'service_pass' AND a.{brand} AND NOT EXISTS (
                SELECT 1 FROM pass_product pp WHERE pp.brand_id = a.brand_id AND pp.code = a.asset_code)""",
        # A pass sold holds its product's uses.
        "PASS_SALE_USES": f"""
            SELECT 'lot ' || l.id, 'uses ' || l.amount || ', product ' || pp.uses
            FROM lot l JOIN account a ON a.id = l.account_id
            JOIN ledger_transaction t ON t.id = l.transaction_id
            JOIN pass_product pp ON pp.brand_id = a.brand_id AND pp.code = a.asset_code
            WHERE a.asset = 'service_pass' AND a.kind = 'member' AND a.{brand}
              AND t.kind = 'pass_sale' AND l.amount <> pp.uses""",
        # A visit uses exactly one use.
        "PASS_VISIT_NOT_ONE": f"""
            SELECT 'transaction ' || t.id, 'uses ' || COALESCE(SUM(p.amount), 0)
            FROM ledger_transaction t LEFT JOIN posting p ON p.transaction_id = t.id
                AND p.account_id IN (SELECT a.id FROM account a
                                     WHERE a.asset = 'service_pass' AND a.kind = 'member')
            WHERE t.{brand} AND t.kind = 'pass_visit'
            GROUP BY t.id HAVING COALESCE(SUM(p.amount), 0) <> -1""",
    }


async def audit(brand_id: int | None) -> list[Violation]:
    """The pass checks of one brand (or all): one violation per offending row."""
    brand = f"brand_id = {int(brand_id)}" if brand_id is not None else "brand_id IS NOT NULL"
    conn = connections.get("default")
    found: list[Violation] = []
    for check, query in audit_queries(brand).items():
        _, rows = await conn.execute_query(query)
        found.extend(Violation(check, str(row[0]), str(row[1])) for row in rows)
    return found

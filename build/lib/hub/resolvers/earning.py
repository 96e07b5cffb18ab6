"""What a purchase earns: one evaluation shared by recording a purchase and by checkout.

The rules themselves are pure code in ``hub/resolvers/earn_rules.py``; this module loads a brand's
rule book (compiled once per ``Brand.rules_version`` and kept per process), evaluates purchases,
builds the earn legs, submits them (evaluating again when a limit moved under concurrency), and takes
earned points back for refunds. A caller outside this domain (checkout) does:

    request = EarnRequest(brand, membership, cash_fen, lines, store_id=store_id, at=purchased_at)
    outcome, earned = await post_earn(ledger, request, lambda earned: Command(
        ..., legs=(*my_legs, *earned.legs), guards=(*my_guards, *earned.guards),
        details={**my_details, **earned.details}, report=...))
    await purchases.after_purchase(outcome.transaction)      # tiers, referral, member activity

``earned.details`` carries the ``breakdown`` (``LedgerTransaction.breakdown`` reads it back) and what
``after_purchase`` needs; keep its keys at the top level of the transaction's details. On a replay
the outcome is the stored one: read its details, not ``earned``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from tortoise import connections

from hub.db import sql
from hub.domain import EarnRuleKind
from hub.errors import DomainError, ErrorCode
from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Guard, Leg, LotTerms, Outcome
from hub.ledger.engine import LedgerWriter
from hub.ledger.sql import as_datetime, as_json
from hub.models import Brand, LedgerCounter, Member, Membership
from hub.resolvers.earn_rules import (
    EARN_GUARD_FIELD,
    BrandRate,
    BreakdownEntry,
    PurchaseFacts,
    PurchaseLine,
    RuleBook,
    RuleSet,
    StoredVersion,
    eligible_lines,
    evaluate,
    local_time,
)

__all__ = [
    "Clawback",
    "EarnRequest",
    "EarnResult",
    "PurchaseLine",
    "breakdown_of",
    "clawback_legs",
    "evaluate_earn",
    "post_clawback",
    "post_earn",
]

ROUNDING = "down per line"
T = TypeVar("T")


class BrandCache(Generic[T]):
    """Per process: one value per brand, valid while the brand's ``rules_version`` is unchanged.

    The version is read with the brand (it comes with the membership), so a hit costs no query, and a
    change made by any process is seen by every other at its next purchase. Bounded, least recently
    used first out.
    """

    def __init__(self, load: Callable[[int], Awaitable[tuple[int, T]]], size: int = 2048) -> None:
        self._load = load
        self._size = size
        self._items: OrderedDict[int, tuple[int, T]] = OrderedDict()
        self.loads = 0

    async def get(self, brand: Brand) -> T:
        item = self._items.get(brand.id)
        if item is not None and item[0] >= brand.rules_version:
            self._items.move_to_end(brand.id)
            return item[1]
        self.loads += 1
        version, value = await self._load(brand.id)
        self._items[brand.id] = (version, value)
        self._items.move_to_end(brand.id)
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        self._items.clear()


async def _load_book(brand_id: int) -> tuple[int, RuleBook]:
    conn = connections.get("default")
    # The version first: the rows read after it are at least as new as it says.
    _, brand = await conn.execute_query(sql(conn, "SELECT rules_version FROM brand WHERE id = ?"), [brand_id])
    version = int(brand[0]["rules_version"]) if brand else 0
    _, rows = await conn.execute_query(
        sql(
            conn,
            "SELECT v.rule_id, r.kind, v.version, v.effective_from, v.active, v.name, v.position, v.spec"
            " FROM earn_rule_version v JOIN earn_rule r ON r.id = v.rule_id WHERE v.brand_id = ?",
        ),
        [brand_id],
    )
    versions = [
        StoredVersion(
            rule_id=row["rule_id"],
            kind=EarnRuleKind(row["kind"]),
            version=row["version"],
            effective_from=as_datetime(row["effective_from"]),  # type: ignore[arg-type]
            active=bool(row["active"]),
            name=row["name"],
            position=row["position"],
            spec=as_json(row["spec"]),
        )
        for row in rows
    ]
    return version, RuleBook(version, versions)


BOOKS: BrandCache[RuleBook] = BrandCache(_load_book)


async def rules_in_force(brand: Brand, at: datetime) -> RuleSet:
    return (await BOOKS.get(brand)).at(at)


# --- evaluating ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EarnResult:
    points: int
    # How the points were derived, stored as the transaction's details and shown to clients.
    details: dict[str, Any] = field(default_factory=dict)
    breakdown: tuple[BreakdownEntry, ...] = ()
    # Ledger pieces for the command: issuance -> member (or -> pending, maturing), and the guards of
    # the limits the evaluation relied on.
    legs: tuple[Leg, ...] = ()
    guards: tuple[Guard, ...] = ()
    pending: int = 0  # of ``points``, held pending until ``matures_at``
    matures_at: datetime | None = None
    counter_keys: tuple[str, ...] = ()


async def expires_at_for(brand: Brand, earned_at: datetime) -> datetime | None:
    """When points earned at ``earned_at`` expire: the brand's expiry policy in force then
    (docs/lifecycle.md; cached per process like the rule book)."""
    from hub.resolvers.expiry_policy import expiry_at_earning  # it builds on this module's BrandCache

    return await expiry_at_earning(brand, earned_at)


def _utc(at: datetime | None) -> datetime:
    return (at or datetime.now(UTC)).astimezone(UTC)


async def evaluate_earn(
    brand: Brand,
    membership: Membership,
    amount_fen: int,
    lines: tuple[PurchaseLine, ...] = (),
    *,
    store_id: int | None = None,
    at: datetime | None = None,
    counters: Mapping[str, int] | None = None,
) -> EarnResult:
    """The points a purchase of ``amount_fen`` (paid in cash: checkout passes its cash part) earns.

    ``lines`` describe the bill (their sum may exceed ``amount_fen`` when part was paid otherwise: each
    line's earning amount is scaled down exactly, see ``eligible_lines``); ``at`` is the purchase's
    time (default now), which picks the rule versions in force and the brand-local day. ``counters``:
    None to assume no limit moved (``post_earn`` evaluates again with the read counters when one did),
    or the counters as read (``preview_earn``).
    """
    moment = _utc(at)
    rules = await rules_in_force(brand, moment)
    birthday = None
    if any(r.kind is EarnRuleKind.BIRTHDAY_BONUS for r in rules.bonuses):
        birthday = await Member.filter(id=membership.member_id).first().values_list("birthday", flat=True)
    facts = PurchaseFacts(
        membership_id=membership.id,
        amount_fen=amount_fen,
        lines=eligible_lines(lines, amount_fen),
        store_id=store_id,
        tier=membership.tier,
        local=local_time(moment, brand.timezone),
        first_purchase=membership.last_purchase_at is None,
        birthday=birthday,  # type: ignore[arg-type]
        counters=counters,
    )
    result = evaluate(rules, BrandRate(brand.earn_points, brand.earn_unit_fen), facts)
    points = result.points
    details: dict[str, Any] = {
        "amountFen": amount_fen,
        "purchasedAt": moment.isoformat(),
        "earnPoints": brand.earn_points,
        "earnUnitFen": brand.earn_unit_fen,
        "rounding": ROUNDING,
        "points": points,
        "rulesVersion": (await BOOKS.get(brand)).version,
        "breakdown": [entry.to_json() for entry in result.breakdown],
    }
    if lines:
        details["lines"] = len(lines)
    legs: tuple[Leg, ...] = ()
    pending, matures_at = 0, None
    if points:
        issuance = AccountRef.issuance_for(brand.id, membership.id)
        terms_expiry = await expires_at_for(brand, moment)
        if brand.pending_days > 0:
            pending, matures_at = points, moment + timedelta(days=brand.pending_days)
            to = Leg(
                AccountRef.pending(brand.id, membership.id),
                points,
                lot=LotTerms(expires_at=terms_expiry, matures_at=matures_at),
            )
            details["pending"], details["maturesAt"] = pending, matures_at.isoformat()
        else:
            lot = LotTerms(expires_at=terms_expiry) if terms_expiry else None
            to = Leg(AccountRef.member(brand.id, membership.id), points, lot=lot)
        legs = (Leg(issuance, -points), to)
    return EarnResult(
        points,
        details,
        result.breakdown,
        legs,
        result.guards,
        pending,
        matures_at,
        result.counter_keys,
    )


async def read_counters(keys: Sequence[str]) -> dict[str, int]:
    rows = await LedgerCounter.filter(key__in=list(keys)).values_list("key", "value")
    return {str(key): int(value) for key, value in rows}


@dataclass(frozen=True)
class EarnRequest:
    brand: Brand
    membership: Membership
    amount_fen: int
    lines: tuple[PurchaseLine, ...] = ()
    store_id: int | None = None
    at: datetime | None = None


async def post_earn(
    ledger: LedgerWriter,
    request: EarnRequest,
    build: Callable[[EarnResult], Command],
    attempts: int = 5,
) -> tuple[Outcome, EarnResult]:
    """Evaluate, build the command and submit it; when one of the evaluation's limits (a daily cap,
    a once-only bonus) moved meanwhile, read those counters, evaluate again and resubmit.

    The guards make the limits exact under any concurrency: of two first purchases at once only one
    gets the bonus, and the daily cap is never passed (the second purchase is evaluated again with
    what the first one used). The common case reads no counter at all.
    """
    at = _utc(request.at)
    counters: dict[str, int] | None = None
    for _ in range(attempts):
        earned = await evaluate_earn(
            request.brand,
            request.membership,
            request.amount_fen,
            request.lines,
            store_id=request.store_id,
            at=at,
            counters=counters,
        )
        try:
            return await ledger.submit(build(earned)), earned
        except DomainError as error:
            if error.field != EARN_GUARD_FIELD or not earned.counter_keys:
                raise
            counters = await read_counters(earned.counter_keys)
    raise DomainError(
        ErrorCode.LIMIT_REACHED, "Too many purchases of this member at once; try again.", "idempotencyKey"
    )


async def preview_earn(
    brand: Brand,
    membership: Membership,
    amount_fen: int,
    lines: tuple[PurchaseLine, ...] = (),
    *,
    store_id: int | None = None,
    at: datetime | None = None,
) -> EarnResult:
    """What ``post_earn`` would credit now, without writing: the limits are read, not assumed."""
    moment = _utc(at)
    first = await evaluate_earn(
        brand, membership, amount_fen, lines, store_id=store_id, at=moment, counters={}
    )
    if not first.counter_keys:
        return first
    counters = await read_counters(first.counter_keys)
    return await evaluate_earn(
        brand, membership, amount_fen, lines, store_id=store_id, at=moment, counters=counters
    )


def breakdown_of(kind: str, details: Mapping[str, Any]) -> list[BreakdownEntry]:
    """A transaction's earn breakdown, from its details (earns written before rules existed carry the
    brand's rate: one entry for it)."""
    if "breakdown" in details:
        return [BreakdownEntry.from_json(entry) for entry in details["breakdown"]]
    if kind == "earn" and "earnPoints" in details and "points" in details:
        text = (
            f"{details['earnPoints']} per {details['earnUnitFen']} fen on {details.get('amountFen', 0)} fen"
        )
        return [
            BreakdownEntry(
                None, None, EarnRuleKind.BASE_RATE, "Brand earn rate", int(details["points"]), text
            )
        ]
    return []


# --- taking earned points back (refunds) ------------------------------------------------------------


@dataclass(frozen=True)
class Clawback:
    """Legs that take back points earned by one transaction: pending first, then available points."""

    legs: tuple[Leg, ...]
    from_pending: int
    from_available: int
    shortfall: int  # what the member no longer has (spent): forgiven, or the caller's to settle

    @property
    def points(self) -> int:
        return self.from_pending + self.from_available


async def clawback_legs(membership: Membership, earn_transaction_id: int, points: int) -> Clawback:
    """The legs that take back ``points`` earned by ``earn_transaction_id`` (a refund's share of them).

    Pending lots of that transaction go first (cancelled before they mature, drawn exactly by id);
    the rest comes from the member's available points, soonest expiry first, as far as the balance
    covers; what it does not cover is the ``shortfall`` (the brand's policy decides what happens to
    it). Points return to the brand's issuance account they came from. The legs are read now: a
    maturity or a spend committed before the refund makes them stale, and the command fails alone
    (ALREADY_USED or INSUFFICIENT_POINTS; ``post_clawback`` reads them again and resubmits).
    """
    if points <= 0:
        return Clawback((), 0, 0, 0)
    brand_id, mid = membership.brand_id, membership.id
    pending_ref, member_ref = AccountRef.pending(brand_id, mid), AccountRef.member(brand_id, mid)
    conn = connections.get("default")
    _, lots = await conn.execute_query(
        sql(
            conn,
            "SELECT l.id, l.remaining FROM lot l JOIN account a ON a.id = l.account_id"
            " WHERE l.transaction_id = ? AND a.key = ? AND l.remaining > 0 ORDER BY l.id",
        ),
        [earn_transaction_id, pending_ref.key],
    )
    legs: list[Leg] = []
    from_pending = min(points, sum(int(row["remaining"]) for row in lots))
    if from_pending:
        legs.append(Leg(pending_ref, -from_pending, draw=tuple(int(row["id"]) for row in lots)))
    _, rows = await conn.execute_query(
        sql(conn, "SELECT balance FROM account WHERE key = ?"), [member_ref.key]
    )
    available = int(rows[0]["balance"]) if rows else 0
    from_available = min(points - from_pending, available)
    if from_available:
        legs.append(Leg(member_ref, -from_available))
    if legs:
        legs.append(Leg(AccountRef.issuance_for(brand_id, mid), from_pending + from_available))
    return Clawback(tuple(legs), from_pending, from_available, points - from_pending - from_available)


async def post_clawback(
    ledger: LedgerWriter,
    membership: Membership,
    earn_transaction_id: int,
    points: int,
    build: Callable[[Clawback], Command],
    attempts: int = 5,
) -> tuple[Outcome, Clawback]:
    """Read the clawback legs, build the command and submit it; read them again if a maturity or a
    spend made them stale meanwhile (never more than the member has: see ``clawback_legs``)."""
    for _ in range(attempts):
        clawback = await clawback_legs(membership, earn_transaction_id, points)
        try:
            return await ledger.submit(build(clawback)), clawback
        except DomainError as error:
            # A named pending lot matured or was drawn meanwhile (ALREADY_USED), or the member spent
            # points meanwhile: read the legs again.
            if error.code not in (ErrorCode.ALREADY_USED, ErrorCode.INSUFFICIENT_POINTS):
                raise
    raise DomainError(ErrorCode.LIMIT_REACHED, "The member's points kept changing; try again.")

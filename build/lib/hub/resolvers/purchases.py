"""Recording a purchase: the earn evaluation, one ledger command, then what follows from it.

``record_purchase`` evaluates the rules (``hub/resolvers/earning.py``) and posts one EARN command keyed
by the caller's idempotency key. After the commit, ``after_purchase`` does what follows from the
purchase, each step exactly once however often it runs (a retry replays the ledger and runs it again):

1. the ``purchase`` row, unique per ledger transaction, and the membership's activity
   (``last_purchase_at``/``last_purchase_store_id`` never move back; ``lifetime_spend_fen`` grows only
   when the purchase row is new) in one atomic statement or transaction;
2. a tier upgrade when the purchase crossed a threshold (``hub/resolvers/tiers.py``);
3. the referral rewards on the referee's first qualifying purchase (``hub/resolvers/referrals.py``).

A process that dies between the ledger commit and these steps leaves them to the client's retry with
the same key (the ledger replays, the steps run) and to the audit, which names an earn without its
purchase row. Checkout (the spending domain) calls ``after_purchase`` the same way after its commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.db import sql, with_retries
from hub.errors import InvalidInput, NotFound
from hub.events.broker import LocalBroker
from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, TransactionRecord
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import Brand, Membership, Store, TransactionKind
from hub.resolvers import referrals, tiers
from hub.resolvers import validation as v
from hub.resolvers.access import get_membership
from hub.resolvers.earn_rules import MAX_LINES, TEXT_ITEM
from hub.resolvers.earning import EarnRequest, EarnResult, PurchaseLine, post_earn, preview_earn

# A purchase may carry its own time for a till that uploads late; older than this is refused.
DEFAULT_LATE_LIMIT = timedelta(days=7)
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class PurchaseResult:
    transaction: TransactionRecord
    membership: Membership
    points: int  # every point the purchase earned
    pending: int  # of which held pending until ``matures_at``
    matures_at: datetime | None
    balance: int  # the member's available points right after this transaction
    replayed: bool
    tier_change: tiers.TierChanged | None = None


def purchase_lines(
    lines: list[tuple[int, str, str, str]] | None, amount_fen: int
) -> tuple[PurchaseLine, ...]:
    """Checked lines of a bill: each at least 1 fen, together at least what earns."""
    if not lines:
        return ()
    if len(lines) > MAX_LINES:
        raise InvalidInput(f"At most {MAX_LINES} lines.", "lines")
    out = []
    for amount, category, margin_class, sku in lines:
        v.positive(amount, "lines.amountFen")
        for value, name in ((category, "category"), (margin_class, "marginClass"), (sku, "sku")):
            if value and not TEXT_ITEM.fullmatch(value):
                raise InvalidInput("Letters, digits, space and _ . / : - (at most 64).", f"lines.{name}")
        out.append(PurchaseLine(amount, category, margin_class, sku))
    if sum(line.amount_fen for line in out) < amount_fen:
        raise InvalidInput("The lines add up to less than amountFen.", "lines")
    return tuple(out)


def purchase_time(value: datetime | None, late_limit: timedelta = DEFAULT_LATE_LIMIT) -> datetime | None:
    """A till's own purchase time: not in the future, not older than the late-upload limit."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInput("Give the time zone (e.g. 2026-11-05T14:30:00+08:00).", "purchasedAt")
    now = datetime.now(UTC)
    if value > now + CLOCK_SKEW:
        raise InvalidInput("A purchase cannot be in the future.", "purchasedAt")
    if value < now - late_limit:
        raise InvalidInput(f"Purchases older than {late_limit.days} days cannot be recorded.", "purchasedAt")
    return value.astimezone(UTC)


async def record_purchase(
    ledger: LedgerWriter,
    principal: Principal | None,
    membership_id: int,
    amount_fen: int,
    idempotency_key: str,
    lines: list[tuple[int, str, str, str]] | None = None,
    purchased_at: datetime | None = None,
    *,
    broker: LocalBroker | None = None,
    late_limit: timedelta = DEFAULT_LATE_LIMIT,
) -> PurchaseResult:
    p = policy.require(principal, policy.EARN_POINTS)
    key = v.idempotency_key(idempotency_key)
    amount_fen = v.positive(amount_fen, "amountFen")
    bill = purchase_lines(lines, amount_fen)
    at = purchase_time(purchased_at, late_limit)
    membership = await get_membership(p, policy.EARN_POINTS, membership_id)
    brand: Brand = membership.brand  # loaded with the membership
    # The request as the client sent it: a retry without a time of its own is the same request.
    request: dict[str, Any] = {"membership": membership.id, "amount_fen": amount_fen}
    if bill:
        request["lines"] = [[x.amount_fen, x.category, x.margin_class, x.sku] for x in bill]
    if at is not None:
        request["purchased_at"] = at.isoformat()
    mine = AccountRef.member(brand.id, membership.id)
    the_claim = claim(p.idempotency_scope, key, "recordPurchase", **request)

    def build(earned: Any) -> Command:
        return Command(
            kind=TransactionKind.EARN,
            brand_id=brand.id,
            legs=earned.legs,
            claim=the_claim,
            store_id=p.store_id,
            membership_id=membership.id,
            actor_key_id=p.key_id,
            details=earned.details,
            report=mine,
            guards=earned.guards,
        )

    outcome, _ = await post_earn(
        ledger, EarnRequest(brand, membership, amount_fen, bill, store_id=p.store_id, at=at), build
    )
    txn = outcome.transaction
    change = await after_purchase(ledger, membership, txn, broker=broker)
    details = txn.details
    matures = details.get("maturesAt")
    return PurchaseResult(
        transaction=txn,
        membership=membership,
        points=int(details.get("points", 0)),
        pending=int(details.get("pending", 0)),
        matures_at=datetime.fromisoformat(matures) if matures else None,
        balance=outcome.report_balance or 0,
        replayed=outcome.replayed,
        tier_change=change,
    )


async def preview(
    principal: Principal | None,
    membership_id: int,
    amount_fen: int,
    lines: list[tuple[int, str, str, str]] | None = None,
    at: datetime | None = None,
    store_id: int | None = None,
) -> EarnResult:
    """What ``record_purchase`` would earn, written nowhere. Any time may be asked (HQ testing a rule
    that takes effect later); a store previews at itself, HQ names the store or none."""
    p = policy.require(principal, policy.PREVIEW_EARN)
    amount_fen = v.positive(amount_fen, "amountFen")
    bill = purchase_lines(lines, amount_fen)
    if at is not None and at.tzinfo is None:
        raise InvalidInput("Give the time zone (e.g. 2026-11-05T14:30:00+08:00).", "at")
    membership = await get_membership(p, policy.PREVIEW_EARN, membership_id)
    if p.store_id is not None:
        if store_id is not None and store_id != p.store_id:
            raise InvalidInput("A store previews its own purchases: leave storeId out.", "storeId")
        store_id = p.store_id
    elif store_id is not None and not await Store.exists(id=store_id, brand_id=membership.brand_id):
        raise NotFound("No such store in this brand.", "storeId")
    return await preview_earn(membership.brand, membership, amount_fen, bill, store_id=store_id, at=at)


async def after_purchase(
    ledger: LedgerWriter,
    membership: Membership,
    txn: TransactionRecord,
    *,
    broker: LocalBroker | None = None,
) -> tiers.TierChanged | None:
    """Everything that follows a committed purchase (see the module's docstring); idempotent.

    ``membership`` comes with its brand (``access.get_membership`` loads both). ``broker`` publishes a
    tier change live (a process without one leaves it to the ``tierChanged`` stream's catch-up).
    """
    details = txn.details
    brand: Brand = membership.brand
    at = datetime.fromisoformat(details["purchasedAt"]) if "purchasedAt" in details else txn.created_at
    amount = int(details.get("amountFen", 0))
    points = int(details.get("points", 0))
    tier = await record_activity(txn, membership.id, amount, points, int(details.get("pending", 0)), at)
    change = await tiers.upgrade_after_purchase(brand, membership.id, tier, txn.id, broker)
    if membership.referrer_id is not None:
        await referrals.reward_after_purchase(ledger, brand, membership, txn.id, amount, at)
    return change


_PG_ACTIVITY = """
WITH ins AS (
    INSERT INTO purchase (brand_id, membership_id, store_id, transaction_id, amount_fen, points, pending,
                          purchased_at, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (transaction_id) DO NOTHING RETURNING amount_fen)
UPDATE membership SET
    lifetime_spend_fen = lifetime_spend_fen + COALESCE((SELECT amount_fen FROM ins), 0),
    last_purchase_store_id = CASE WHEN last_purchase_at IS NULL OR last_purchase_at < $8
                                  THEN $3 ELSE last_purchase_store_id END,
    last_purchase_at = CASE WHEN last_purchase_at IS NULL OR last_purchase_at < $8
                            THEN $8 ELSE last_purchase_at END
WHERE id = $2
RETURNING tier
"""
_SQLITE_INSERT = """
INSERT INTO purchase (brand_id, membership_id, store_id, transaction_id, amount_fen, points, pending,
                      purchased_at, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (transaction_id) DO NOTHING RETURNING id
"""
_SQLITE_ACTIVITY = """
UPDATE membership SET
    lifetime_spend_fen = lifetime_spend_fen + ?,
    last_purchase_store_id = CASE WHEN last_purchase_at IS NULL OR last_purchase_at < ?
                                  THEN ? ELSE last_purchase_store_id END,
    last_purchase_at = CASE WHEN last_purchase_at IS NULL OR last_purchase_at < ?
                            THEN ? ELSE last_purchase_at END
WHERE id = ?
RETURNING tier
"""


async def record_activity(
    txn: TransactionRecord, membership_id: int, amount_fen: int, points: int, pending: int, at: datetime
) -> str:
    """The purchase row and the membership's activity, atomically; returns the membership's tier."""
    conn = connections.get("default")
    now = datetime.now(UTC)
    if conn.capabilities.dialect == "postgres":
        args = [txn.brand_id, membership_id, txn.store_id, txn.id, amount_fen, points, pending, at, now]
        _, rows = await conn.execute_query(_PG_ACTIVITY, args)
        return str(rows[0]["tier"])

    async def write() -> str:
        stamp, created = at.isoformat(" "), now.isoformat(" ")
        async with in_transaction() as tx:
            args = [
                txn.brand_id,
                membership_id,
                txn.store_id,
                txn.id,
                amount_fen,
                points,
                pending,
                stamp,
                created,
            ]
            _, inserted = await tx.execute_query(_SQLITE_INSERT, args)
            spend = amount_fen if inserted else 0
            _, rows = await tx.execute_query(
                _SQLITE_ACTIVITY, [spend, stamp, txn.store_id, stamp, stamp, membership_id]
            )
            return str(rows[0]["tier"])

    return await with_retries(write)


async def note_refund(
    purchase_transaction_id: int, refund: TransactionRecord, amount_fen: int, points: int
) -> bool:
    """Record that ``refund`` took back ``amount_fen`` and ``points`` of a purchase, once per refund
    transaction (the refund's writer calls it after its commit; a retry finds the row). Tier
    qualification counts purchases net of refunds. False when there is no such purchase."""
    conn = connections.get("default")
    _, rows = await conn.execute_query(
        sql(conn, "SELECT id, membership_id, purchased_at FROM purchase WHERE transaction_id = ?"),
        [purchase_transaction_id],
    )
    if not rows:
        return False
    row = rows[0]
    now = datetime.now(UTC)
    postgres = conn.capabilities.dialect == "postgres"
    stamp = row["purchased_at"] if postgres else str(row["purchased_at"])
    await conn.execute_query(
        sql(
            conn,
            "INSERT INTO purchase_refund (purchase_id, membership_id, transaction_id, amount_fen, points,"
            " purchased_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (transaction_id) DO NOTHING",
        ),
        [
            row["id"],
            row["membership_id"],
            refund.id,
            amount_fen,
            points,
            stamp,
            now if postgres else now.isoformat(" "),
        ],
    )
    return True

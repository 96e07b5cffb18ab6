"""Franchise clearing: points earned at store X and redeemed at store Y, settled between the stores.

Points belong to the brand, but a franchised store funds the points it issues and is paid for the
points it accepts. Once a brand's HQ chose who funds (``set_policy``: the issuing store, HQ, or a
split), each redemption at a store of the brand that drew points issued at other stores (the lots it
drew, and the store of the transaction that created each lot) is cleared by one ledger transaction
(kind ``clearing``, claim ``redemption:<id>``, so exactly once however often the job runs):

- the accepting store's ``receivable`` grows by the points' value at the brand's point value
  (``floor(points × pointValueFen / pointValuePoints)`` per issuing store);
- the issuing store's ``payable`` grows by its share, and the brand's settlement ``clearing`` account
  carries HQ's share.

The clearing job (``clearing.run``, every ten minutes) does it after the fact, so no redemption path
changes; ``runClearing`` does it at once. ``statement`` gives per store: points issued (and redeemed
elsewhere), points accepted (issued elsewhere), what it owes and is owed. HQ sees every store, a store
its own. Lots without an issuing store (a maturity, an HQ grant, a transfer) are HQ's: not cleared.
See docs/partnerships.md, "Franchise clearing".
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise import connections
from tortoise.exceptions import IntegrityError

from hub import policy
from hub.auth import Principal
from hub.db import sql
from hub.domain import ClearingFunding, Role
from hub.errors import InvalidInput
from hub.ledger.accounts import AccountRef
from hub.ledger.audit import Violation
from hub.ledger.commands import Command, Leg
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import AccountKind, Asset, Brand, ClearingEntry, ClearingPolicy, TransactionKind
from hub.resolvers import access
from hub.worker.handlers import Chunk, JobContext, JSONCursor, Plan
from hub.worker.schedules import Schedule

log = logging.getLogger(__name__)
BATCH = 200


async def set_policy(
    principal: Principal | None, brand_id: int, funding: ClearingFunding, issuer_share_bp: int = 10_000
) -> ClearingPolicy:
    """HQ chooses who funds points across its stores; redemptions cleared from then on follow it."""
    brand = await access.get_brand(principal, policy.CONFIGURE_CLEARING, brand_id)
    if funding == ClearingFunding.SPLIT:
        if not 0 < issuer_share_bp < 10_000:
            raise InvalidInput("Between 1 and 9999 basis points (5000 = half).", "issuerShareBasisPoints")
    else:
        issuer_share_bp = 10_000 if funding == ClearingFunding.ISSUING_STORE else 0
    row, _ = await ClearingPolicy.update_or_create(
        brand_id=brand.id, defaults={"funding": funding, "issuer_share_bp": issuer_share_bp}
    )
    return row


# Redemptions at a store of the brand that drew points whose lots other stores of the brand issued,
# not cleared yet: (redemption, accepting store, issuing store, points).
_PENDING = """
SELECT t.id, t.store_id, src.store_id, SUM(la.amount)
FROM ledger_transaction t
JOIN store rs ON rs.id = t.store_id AND rs.brand_id = t.brand_id
JOIN lot_allocation la ON la.transaction_id = t.id
JOIN lot l ON l.id = la.lot_id
JOIN account a ON a.id = l.account_id AND a.asset = 'points' AND a.kind = 'member'
JOIN ledger_transaction src ON src.id = l.transaction_id
JOIN store xs ON xs.id = src.store_id AND xs.brand_id = t.brand_id
WHERE t.brand_id = ? AND t.id > ? AND src.store_id <> t.store_id
  AND t.kind NOT IN ('expire', 'reverse', 'checkout_refund')
  AND NOT EXISTS (SELECT 1 FROM clearing_entry e WHERE e.redemption_id = t.id)
GROUP BY t.id, t.store_id, src.store_id
ORDER BY t.id
"""


@dataclass(frozen=True, slots=True)
class Share:
    issuer: int
    points: int
    fen: int
    issuer_fen: int


def shares(brand: Brand, rule: ClearingPolicy, groups: list[tuple[int, int]]) -> list[Share]:
    """Each issuing store's points at the brand's point value (rounded down), and its part of it."""
    out = []
    for issuer, points in groups:
        fen = points * brand.point_value_fen // brand.point_value_points
        out.append(Share(issuer, points, fen, fen * rule.issuer_share_bp // 10_000))
    return out


def clearing_command(
    brand: Brand, rule: ClearingPolicy, redemption: int, redeemer: int, parts: list[Share]
) -> Command:
    legs: list[Leg] = []
    hq_fen = 0
    owed = 0
    for s in parts:
        if s.issuer_fen:
            legs.append(
                Leg(AccountRef.party(brand.id, AccountKind.PAYABLE, store_id=s.issuer), -s.issuer_fen)
            )
        hq_fen += s.fen - s.issuer_fen
        owed += s.fen
    if owed:
        legs.append(Leg(AccountRef.party(brand.id, AccountKind.RECEIVABLE, store_id=redeemer), owed))
    if hq_fen:
        legs.append(Leg(AccountRef.system(brand.id, AccountKind.CLEARING, asset=Asset.SETTLEMENT), -hq_fen))
    details = {
        "redemptionId": redemption,
        "redeemerStoreId": redeemer,
        "funding": str(rule.funding),
        "issuerShareBasisPoints": rule.issuer_share_bp,
        "pointValue": [brand.point_value_points, brand.point_value_fen],
        "shares": [[s.issuer, s.points, s.fen, s.issuer_fen] for s in parts],
    }
    return Command(
        kind=TransactionKind.CLEARING,
        brand_id=brand.id,
        legs=tuple(legs),
        claim=claim(f"clearing:b{brand.id}", f"redemption:{redemption}", "clearing", **details),
        store_id=redeemer,
        reason="franchise clearing",
        details=details,
    )


async def clear_brand(
    ledger: LedgerWriter, brand_id: int, after: int = 0, limit: int = BATCH
) -> tuple[int, int]:
    """Clear the next redemptions of a brand with a policy: (how many, the last redemption id seen)."""
    rule = await ClearingPolicy.get_or_none(brand_id=brand_id)
    if rule is None:
        return 0, after
    brand = await Brand.get(id=brand_id)
    conn = connections.get("default")
    _, rows = await conn.execute_query(sql(conn, f"{_PENDING} LIMIT {int(limit) * 4}"), [brand_id, after])
    by: dict[int, tuple[int, list[tuple[int, int]]]] = {}
    for t_id, redeemer, issuer, points in rows:
        by.setdefault(int(t_id), (int(redeemer), []))[1].append((int(issuer), int(points)))
    ids = sorted(by)[:limit]
    commands, plans = [], []
    for t_id in ids:
        redeemer, groups = by[t_id]
        parts = shares(brand, rule, sorted(groups))
        commands.append(clearing_command(brand, rule, t_id, redeemer, parts))
        plans.append((t_id, redeemer, parts))
    results = await ledger.submit_many(commands) if commands else []
    for (t_id, redeemer, parts), result in zip(plans, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("clearing of redemption %s failed: %s", t_id, result)
            continue
        for s in parts:
            try:
                await ClearingEntry.create(
                    brand_id=brand_id,
                    redemption_id=t_id,
                    clearing_id=result.transaction.id,
                    issuer_store_id=s.issuer,
                    redeemer_store_id=redeemer,
                    points=s.points,
                    fen=s.fen,
                    issuer_fen=s.issuer_fen,
                )
            except IntegrityError:  # written by a concurrent or earlier run of the same redemption
                pass
    return len(ids), (ids[-1] if ids else after)


async def run_now(ledger: LedgerWriter, principal: Principal | None, brand_id: int) -> int:
    """HQ clears what is pending at once (the job does it every ten minutes)."""
    brand = await access.get_brand(principal, policy.CONFIGURE_CLEARING, brand_id)
    total, after = 0, 0
    while True:
        done, after = await clear_brand(ledger, brand.id, after)
        total += done
        if done < BATCH:
            return total


# --- statements -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreClearing:
    store_id: int
    points_issued: int  # issued here, redeemed at other stores
    points_accepted: int  # issued at other stores, redeemed here
    owes_fen: int  # its share of the points it issued
    owed_fen: int  # for the points it accepted
    net_fen: int  # owed - owes: positive, the store is paid


async def statement(
    principal: Principal | None,
    brand_id: int,
    since: datetime | None,
    until: datetime | None,
    store_id: int | None = None,
) -> list[StoreClearing]:
    """Per store of the brand, what clearing entries made between ``since`` and ``until`` add up to.
    HQ (and the platform) sees every store; a store sees its own only."""
    p = policy.require(principal, policy.READ_CLEARING)
    brand = await access.get_brand(p, policy.READ_CLEARING, brand_id)
    if p.role is Role.STORE:
        store_id = p.store_id
    if since and until and until <= since:
        raise InvalidInput("until must come after since.", "until")
    query = ClearingEntry.filter(brand_id=brand.id)
    if since:
        query = query.filter(created_at__gte=since)
    if until:
        query = query.filter(created_at__lt=until)
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for e in await query:
        totals[e.issuer_store_id][0] += e.points
        totals[e.issuer_store_id][2] += e.issuer_fen
        totals[e.redeemer_store_id][1] += e.points
        totals[e.redeemer_store_id][3] += e.fen
    stores = [store_id] if store_id is not None else sorted(totals)
    return [
        StoreClearing(s, totals[s][0], totals[s][1], totals[s][2], totals[s][3], totals[s][3] - totals[s][2])
        for s in stores
    ]


# --- the job ----------------------------------------------------------------------------------------

KIND = "clearing.run"
SCHEDULE = Schedule("franchise-clearing", KIND, timedelta(minutes=10))


class ClearFranchisePoints:
    """Clears every brand with a clearing policy; the cursor is (brand index, last redemption)."""

    kind = KIND

    async def plan(self, ctx: JobContext) -> Plan:
        rows = await ClearingPolicy.all().order_by("brand_id").values("brand_id")
        brands = [int(r["brand_id"]) for r in rows]
        return Plan(total=0, cursor={"brands": brands, "i": 0, "after": 0})

    async def run_chunk(self, ctx: JobContext, cursor: JSONCursor) -> Chunk:
        brands, i = cursor["brands"], int(cursor["i"])
        if i >= len(brands) or ctx.ledger is None:
            return Chunk(None, 0)
        ctx.ensure_lease()
        done, after = await clear_brand(ctx.ledger, int(brands[i]), int(cursor["after"]))
        if done == BATCH:
            return Chunk({**cursor, "after": after}, done)
        following = {**cursor, "i": i + 1, "after": 0}
        return Chunk(following if i + 1 < len(brands) else None, done)


# --- audit ------------------------------------------------------------------------------------------


def audit_queries(brand: str) -> dict[str, str]:
    """Clearing entries against their ledger transactions: what the accepting store is owed and what
    the issuing stores pay are exactly the receivable and payable postings."""
    return {
        "CLEARING_ENTRY_MISMATCH": f"""
            SELECT 'transaction ' || t.id,
                   'entries ' || COALESCE(e.fen, 0) || '/' || COALESCE(e.issuer_fen, 0)
                   || ' vs receivable ' || COALESCE(r.amount, 0) || ', payable ' || COALESCE(0 - p.amount, 0)
            FROM ledger_transaction t
            LEFT JOIN (SELECT clearing_id, SUM(fen) AS fen, SUM(issuer_fen) AS issuer_fen
                       FROM clearing_entry GROUP BY clearing_id) e ON e.clearing_id = t.id
            LEFT JOIN (SELECT ps.transaction_id, SUM(ps.amount) AS amount FROM posting ps
                       JOIN account a ON a.id = ps.account_id
                        AND a.kind = 'receivable' AND a.store_id IS NOT NULL
                       GROUP BY ps.transaction_id) r ON r.transaction_id = t.id
            LEFT JOIN (SELECT ps.transaction_id, SUM(ps.amount) AS amount FROM posting ps
                       JOIN account a ON a.id = ps.account_id
                        AND a.kind = 'payable' AND a.store_id IS NOT NULL
                       GROUP BY ps.transaction_id) p ON p.transaction_id = t.id
            WHERE t.kind = 'clearing' AND t.{brand}
              AND (COALESCE(e.fen, 0) <> COALESCE(r.amount, 0)
                   OR COALESCE(e.issuer_fen, 0) <> COALESCE(0 - p.amount, 0))""",
    }


async def audit(brand_id: int | None) -> list[Violation]:
    brand = f"brand_id = {int(brand_id)}" if brand_id is not None else "brand_id IS NOT NULL"
    conn = connections.get("default")
    found: list[Violation] = []
    for check, query in audit_queries(brand).items():
        _, rows = await conn.execute_query(query)
        found.extend(Violation(check, str(row[0]), str(row[1])) for row in rows)
    return found

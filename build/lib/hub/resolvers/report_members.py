"""Members in reports (docs/reports.md): the HQ member list, member counts per tier, cohorts of points.

The member list answers a page in one statement (memberships with their person's phone and their
points account), keyset-paged on its sort key and the membership id; what a row points at (a store)
is batched by the schema's DataLoaders, so a page of 100 costs a constant number of statements.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hub.db import fetch
from hub.domain import MemberListOrder, ReportPeriod
from hub.errors import InvalidInput
from hub.models import Brand, Store
from hub.resolvers.reports import (
    _as_datetime,
    _postgres,
    _time_param,
    check_range,
    local_bounds,
    local_day,
    period_last_day,
    period_start,
)

# --- the member list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberFilter:
    tier: str | None = None
    last_purchase_store_id: int | None = None
    join_store_id: int | None = None
    min_points: int | None = None
    last_purchase_after: datetime | None = None  # at or after
    last_purchase_before: datetime | None = None  # before, or never bought


@dataclass(frozen=True)
class MemberRow:
    membership_id: int
    phone: str  # as stored; the schema masks it
    tier: str
    points: int
    pending: int
    lifetime_spend_fen: int
    last_purchase_at: datetime | None
    last_purchase_store_id: int | None
    join_store_id: int | None
    created_at: datetime
    sort_value: Any


@dataclass(frozen=True)
class MemberPage:
    rows: list[MemberRow]
    has_next_page: bool
    has_previous_page: bool = False

    def cursor(self, row: MemberRow) -> str:
        return encode_cursor(row.sort_value, row.membership_id)


def encode_cursor(value: Any, pk: int) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    text = f"[{value},{pk}]" if isinstance(value, int) else json.dumps([value, pk])
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_cursor(cursor: str, order: MemberListOrder) -> tuple[Any, int]:
    try:
        value, pk = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(pk, int) or isinstance(pk, bool) or not 0 < pk < 2**63:
            raise ValueError(cursor)
        if order in (MemberListOrder.POINTS, MemberListOrder.SPEND):
            if not isinstance(value, int) or isinstance(value, bool) or abs(value) >= 2**63:
                raise ValueError(cursor)
        elif order is MemberListOrder.LAST_PURCHASE:
            if not isinstance(value, str):
                raise ValueError(cursor)
            if _postgres():
                value = _as_datetime(value)
        else:
            value = pk
        return value, pk
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput("Malformed cursor.", "after") from None


def _sort_expression(order: MemberListOrder) -> str:
    if order is MemberListOrder.POINTS:
        return "COALESCE(a.balance, 0)"
    if order is MemberListOrder.SPEND:
        return "ms.lifetime_spend_fen"
    if order is MemberListOrder.LAST_PURCHASE:
        # Never bought sorts last: before every real time.
        return (
            "COALESCE(ms.last_purchase_at, 'epoch'::timestamptz)"
            if _postgres()
            else "COALESCE(ms.last_purchase_at, '')"
        )
    return "ms.id"


MEMBER_COLUMNS = (
    "SELECT ms.id, m.phone, ms.tier, COALESCE(a.balance, 0) AS points, COALESCE(pa.balance, 0) AS pending,"
    " ms.lifetime_spend_fen, ms.last_purchase_at, ms.last_purchase_store_id, ms.join_store_id,"
    " ms.created_at, {sort} AS sort_value"
    " FROM membership ms JOIN member m ON m.id = ms.member_id"
    " LEFT JOIN account a ON a.membership_id = ms.id AND a.asset = 'points' AND a.kind = 'member'"
    " LEFT JOIN account pa ON pa.membership_id = ms.id AND pa.asset = 'points' AND pa.kind = 'pending'"
)


async def member_page(
    brand: Brand,
    member_filter: MemberFilter,
    order: MemberListOrder,
    first: int,
    after: str | None,
    max_size: int,
) -> MemberPage:
    """One page of the brand's memberships in ``order``: one statement."""
    if not 0 <= first <= max_size:
        raise InvalidInput(f"first must be between 0 and {max_size}.", "first")
    sort = _sort_expression(order)
    where, args = ["ms.brand_id = ?"], [brand.id]
    f = member_filter
    if f.tier is not None:
        where.append("ms.tier = ?")
        args.append(f.tier)
    if f.last_purchase_store_id is not None:
        where.append("ms.last_purchase_store_id = ?")
        args.append(f.last_purchase_store_id)
    if f.join_store_id is not None:
        where.append("ms.join_store_id = ?")
        args.append(f.join_store_id)
    if f.min_points is not None:
        where.append("COALESCE(a.balance, 0) >= ?")
        args.append(f.min_points)
    if f.last_purchase_after is not None:
        where.append("ms.last_purchase_at >= ?")
        args.append(_time_param(f.last_purchase_after))
    if f.last_purchase_before is not None:
        where.append("(ms.last_purchase_at IS NULL OR ms.last_purchase_at < ?)")
        args.append(_time_param(f.last_purchase_before))
    before = False
    if after is not None:
        value, pk = decode_cursor(after, order)
        # Whether anything precedes the cursor: one probe, only for pages asked with a cursor.
        probe = (
            MEMBER_COLUMNS.format(sort=sort)
            + " WHERE "
            + " AND ".join([*where, f"({sort} > ? OR ({sort} = ? AND ms.id >= ?))"])
            + " LIMIT 1"
        )
        before = bool(await fetch(probe, [*args, value, value, pk]))
        where.append(f"({sort} < ? OR ({sort} = ? AND ms.id < ?))")
        args.extend([value, value, pk])
    query = (
        MEMBER_COLUMNS.format(sort=sort)
        + " WHERE "
        + " AND ".join(where)
        + f" ORDER BY {sort} DESC, ms.id DESC LIMIT {int(first) + 1}"
    )
    rows = [_member_row(r) for r in await fetch(query, args)]
    return MemberPage(rows[:first], len(rows) > first, before)


def _member_row(r: Any) -> MemberRow:
    last = r["last_purchase_at"]
    return MemberRow(
        membership_id=int(r["id"]),
        phone=r["phone"],
        tier=r["tier"],
        points=int(r["points"]),
        pending=int(r["pending"]),
        lifetime_spend_fen=int(r["lifetime_spend_fen"]),
        last_purchase_at=_as_datetime(last) if last else None,
        last_purchase_store_id=r["last_purchase_store_id"],
        join_store_id=r["join_store_id"],
        created_at=_as_datetime(r["created_at"]),
        sort_value=r["sort_value"],
    )


async def store_names(ids: Iterable[int | None]) -> dict[int | None, tuple[str, str]]:
    """Store id -> (code, name), for exports (a store a brand's row names is the brand's)."""
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    return {
        pk: (code, name)
        for pk, code, name in await Store.filter(id__in=wanted).values_list("id", "code", "name")
    }


# --- member counts ----------------------------------------------------------------------------------


@dataclass
class TierMembers:
    tier: str
    total: int = 0
    enrolled: int = 0
    active: int = 0
    lapsed: int = 0


@dataclass
class MemberCounts:
    """Members of the brand: now (total, lapsed) and in a date range (enrolled, active), by tier."""

    by_tier: list[TierMembers] = field(default_factory=list)

    def _sum(self, name: str) -> int:
        return sum(getattr(t, name) for t in self.by_tier)

    @property
    def total(self) -> int:
        return self._sum("total")

    @property
    def enrolled(self) -> int:
        return self._sum("enrolled")

    @property
    def active(self) -> int:
        return self._sum("active")

    @property
    def lapsed(self) -> int:
        return self._sum("lapsed")


COUNT_QUERY = (
    "SELECT 'total' AS what, tier, COUNT(*) AS n FROM membership WHERE brand_id = ? GROUP BY tier"
    " UNION ALL SELECT 'enrolled', tier, COUNT(*) FROM membership"
    " WHERE brand_id = ? AND created_at >= ? AND created_at < ? GROUP BY tier"
    " UNION ALL SELECT 'active', ms.tier, COUNT(DISTINCT p.membership_id) FROM purchase p"
    " JOIN membership ms ON ms.id = p.membership_id"
    " WHERE p.brand_id = ? AND p.purchased_at >= ? AND p.purchased_at < ? GROUP BY ms.tier"
    " UNION ALL SELECT 'lapsed', tier, COUNT(*) FROM membership"
    " WHERE brand_id = ? AND created_at < ? AND (last_purchase_at IS NULL OR last_purchase_at < ?)"
    " GROUP BY tier"
)


async def member_counts(
    brand: Brand, first: date, last: date, lapsed_days: int, now: datetime | None = None
) -> MemberCounts:
    """Enrolled and active (a purchase) in the brand-local days ``first``..``last``; total and lapsed
    (no purchase in the last ``lapsed_days`` days, members for at least as long) now; by current tier."""
    check_range(first, last)
    if not 1 <= lapsed_days <= 3660:
        raise InvalidInput("lapsedDays must be between 1 and 3660.", "lapsedDays")
    start, end = local_bounds(ZoneInfo(brand.timezone), first, last)
    cutoff = (now or datetime.now(UTC)) - timedelta(days=lapsed_days)
    s, e, c = _time_param(start), _time_param(end), _time_param(cutoff)
    rows = await fetch(COUNT_QUERY, [brand.id, brand.id, s, e, brand.id, s, e, brand.id, c, c])
    tiers: dict[str, TierMembers] = {}
    for r in rows:
        tier = tiers.setdefault(r["tier"], TierMembers(r["tier"]))
        setattr(tier, r["what"], int(r["n"]))
    return MemberCounts(sorted(tiers.values(), key=lambda t: t.tier))


# --- cohorts ----------------------------------------------------------------------------------------


@dataclass
class Cohort:
    """Points that became available to members in one period, and what became of them since."""

    start: date
    last_day: date
    earned: int = 0
    expired: int = 0
    open: int = 0

    @property
    def redeemed(self) -> int:
        """Used otherwise than by expiry: spent, or taken back by a refund."""
        return self.earned - self.expired - self.open


COHORT_QUERY = (
    "SELECT l.created_at, SUM(l.amount) AS amount, SUM(l.remaining) AS remaining,"
    " SUM(COALESCE((SELECT SUM(la.amount) FROM lot_allocation la"
    " JOIN ledger_transaction x ON x.id = la.transaction_id"
    " WHERE la.lot_id = l.id AND x.kind = 'expire'), 0)) AS expired"
    " FROM lot l JOIN account a ON a.id = l.account_id"
    " WHERE a.brand_id = ? AND a.asset = 'points' AND a.kind = 'member'"
    " AND l.created_at >= ? AND l.created_at < ? GROUP BY l.created_at"
)


async def cohorts(brand: Brand, first: date, last: date, period: ReportPeriod) -> list[Cohort]:
    """Per period: the lots credited to members' available points, and how much of them was
    redeemed, expired or is still open now. Reads the lots of the range (not the rollups)."""
    check_range(first, last)
    zone = ZoneInfo(brand.timezone)
    start, end = local_bounds(zone, first, last)
    out: dict[date, Cohort] = {}
    begins = period_start(first, period)
    while begins <= last:
        out[begins] = Cohort(begins, period_last_day(begins, period))
        begins = period_last_day(begins, period) + timedelta(days=1)
    for r in await fetch(COHORT_QUERY, [brand.id, _time_param(start), _time_param(end)]):
        day = local_day(zone, _as_datetime(r["created_at"]))
        if not first <= day <= last:
            continue
        cohort = out[period_start(day, period)]
        cohort.earned += int(r["amount"])
        cohort.open += int(r["remaining"])
        cohort.expired += int(r["expired"])
    return [out[k] for k in sorted(out)]

"""Lapsed members and win-back: who stopped buying, a bulk grant to bring them back, and who came back.

A membership is **lapsed for N days** when it has bought before and its latest purchase was before the
start of the brand-local day N days ago (``Membership.last_purchase_at``, kept by the purchase path);
one that never bought is not lapsed. The list and the win-back grant use the same condition: the
grant is a bulk grant (``hub/resolvers/grants.py``) whose segment is "last purchase before that day",
so the members it fixes when a worker plans it are the ones the list shows at that time.

The **response** of a campaign: of the grant's fixed set of members, how many bought within M days
after its snapshot time (a purchase row with ``purchased_at`` in that window).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise import connections

from hub import policy
from hub.auth import Principal
from hub.db import sql
from hub.errors import InvalidInput
from hub.events.broker import LocalBroker
from hub.ledger.sql import as_datetime
from hub.models import Brand, GrantPlan, Job
from hub.resolvers import access, grants

MAX_DAYS = 3660


def _days(days: int, field: str) -> int:
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"Between 1 and {MAX_DAYS} days.", field)
    return days


def lapsed_since(brand: Brand, days: int, now: datetime | None = None) -> date:
    """The brand-local day whose start a lapsed member's latest purchase precedes."""
    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(brand.timezone)).date()
    return today - timedelta(days=days)


def _start_of(brand: Brand, day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(brand.timezone)).astimezone(UTC)


def _stamp(conn: object, moment: datetime) -> object:
    postgres = conn.capabilities.dialect == "postgres"  # type: ignore[attr-defined]
    return moment if postgres else moment.astimezone(UTC).isoformat(" ")


@dataclass(frozen=True, slots=True)
class LapsedMember:
    membership_id: int
    tier: str
    last_purchase_at: datetime
    last_purchase_store_id: int | None
    balance: int  # available points
    expiring: int  # of which expire within the expiring window


@dataclass(frozen=True, slots=True)
class LapsedPage:
    items: list[LapsedMember]
    has_next_page: bool
    has_previous_page: bool
    since: date


async def lapsed_members(
    principal: Principal | None,
    brand_id: int,
    days: int,
    first: int,
    after: int | None,
    max_page: int,
    expiring_within_days: int = 30,
) -> LapsedPage:
    """HQ: the brand's lapsed members by membership id, with what a win-back needs to know."""
    brand = await access.get_brand(principal, policy.LIST_LAPSED, brand_id)
    _days(days, "days")
    _days(expiring_within_days, "expiringWithinDays")
    if not 0 <= first <= max_page:
        raise InvalidInput(f"first must be between 0 and {max_page}.", "first")
    since = lapsed_since(brand, days)
    now = datetime.now(UTC)
    conn = connections.get("default")
    lapsed = "ms.brand_id = ? AND ms.last_purchase_at < ?"
    window = [brand.id, _stamp(conn, _start_of(brand, since))]
    _, rows = await conn.execute_query(
        sql(
            conn,
            "SELECT ms.id, ms.tier, ms.last_purchase_at, ms.last_purchase_store_id,"
            " COALESCE(a.balance, 0) AS balance,"
            " COALESCE((SELECT SUM(l.remaining) FROM lot l WHERE l.account_id = a.id AND l.remaining > 0"
            "   AND l.expires_at IS NOT NULL AND l.expires_at > ? AND l.expires_at <= ?), 0) AS expiring"
            " FROM membership ms LEFT JOIN account a ON a.membership_id = ms.id AND a.kind = 'member'"
            " AND a.asset = 'points' AND a.asset_code = ''"
            f" WHERE {lapsed} AND ms.id > ? ORDER BY ms.id LIMIT {int(first) + 1}",
        ),
        [_stamp(conn, now), _stamp(conn, now + timedelta(days=expiring_within_days)), *window, after or 0],
    )
    items = [
        LapsedMember(
            int(r["id"]),
            r["tier"],
            as_datetime(r["last_purchase_at"]),  # type: ignore[arg-type]
            None if r["last_purchase_store_id"] is None else int(r["last_purchase_store_id"]),
            int(r["balance"]),
            int(r["expiring"]),
        )
        for r in rows
    ]
    before = False
    if after is not None:
        _, probe = await conn.execute_query(
            sql(conn, f"SELECT 1 AS x FROM membership ms WHERE {lapsed} AND ms.id <= ? LIMIT 1"),
            [*window, after],
        )
        before = bool(probe)
    return LapsedPage(items[:first], len(items) > first, before, since)


async def start_win_back(
    principal: Principal | None,
    broker: LocalBroker | None,
    brand_id: int,
    days: int,
    points: int,
    reason: str,
    idempotency_key: str,
    name: str = "",
) -> tuple[grants.BulkGrant, bool, date]:
    """HQ grants ``points`` to every member lapsed for ``days`` days, as a bulk grant job; returns it,
    whether this request created it, and the day before whose start the members last bought."""
    p = policy.require(principal, policy.START_WIN_BACK)
    brand = await access.get_brand(p, policy.START_WIN_BACK, brand_id)
    _days(days, "days")
    if points <= 0:
        raise InvalidInput("A win-back grants points: more than 0.", "points")
    since = lapsed_since(brand, days)
    grant, created = await grants.start_bulk_grant(
        p,
        broker,
        brand.id,
        name=name.strip() or f"Win-back: lapsed {days} days",
        reason=reason,
        points=points,
        segment=grants.SegmentFields(last_purchase_before=since),
        idempotency_key=idempotency_key,
    )
    return grant, created, since


@dataclass(frozen=True, slots=True)
class Response:
    job: Job
    snapshot_at: datetime | None  # None until a worker fixed the grant's set
    within_days: int
    recipients: int
    purchased: int

    @property
    def rate_basis_points(self) -> int:
        """purchased / recipients in basis points, rounded down (0 without recipients)."""
        return self.purchased * 10_000 // self.recipients if self.recipients else 0


async def campaign_response(principal: Principal | None, job_id: int, within_days: int) -> Response:
    """Of a bulk grant's fixed set, how many bought within ``within_days`` days after its snapshot."""
    job = await access.get_job(principal, policy.READ_WIN_BACK_RESPONSE, job_id, "jobId")
    if job.kind != grants.BULK_GRANT:
        raise InvalidInput("This job is not a bulk grant.", "jobId")
    _days(within_days, "withinDays")
    plan = await GrantPlan.get_or_none(job_id=job.id)
    if plan is None:
        return Response(job, None, within_days, 0, 0)
    conn = connections.get("default")
    start = plan.snapshot_at
    _, rows = await conn.execute_query(
        sql(
            conn,
            "SELECT COUNT(*) AS n FROM grant_recipient r WHERE r.job_id = ? AND EXISTS ("
            " SELECT 1 FROM purchase p WHERE p.membership_id = r.membership_id"
            " AND p.purchased_at > ? AND p.purchased_at <= ?)",
        ),
        [job.id, _stamp(conn, start), _stamp(conn, start + timedelta(days=within_days))],
    )
    return Response(job, start, within_days, int(plan.recipients), int(rows[0]["n"]))

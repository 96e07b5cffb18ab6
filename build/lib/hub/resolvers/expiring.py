"""Expiring soon: what a member sees, what HQ lists, and the ``pointsExpiring`` notices.

- A member's view: its open points lots grouped by expiry date, soonest first ("120 points expire on
  31 December").
- HQ lists the memberships with points expiring in the next N days (for its own SMS or app pushes),
  paged by membership id, read through ``lot_expiry_date_idx``.
- Notices: the ``expiry-notices`` schedule runs a ``lifecycle.notify`` job that, for each brand and
  each of its lead times (default 30 and 7 days), writes one ``expiry_notice`` row per membership and
  expiry date newly within that lead time, then publishes it on ``expiring:m<membership>``. The row's
  unique (membership, date, lead) key makes each notice at most once, across runs, workers and
  restarts; a batch first seen inside a shorter lead time gets only that one (points granted 5 days
  before their date get the 7-day notice, not a late 30-day one). A crash between the insert and the
  publish leaves the row unpublished: the next run publishes it, and a subscriber that passes
  ``afterNoticeId`` reads what it missed from the rows.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.db import sql
from hub.errors import InvalidInput
from hub.events.broker import RESYNC, LocalBroker
from hub.ledger.sql import as_datetime
from hub.models import ExpiryNotice, LifecycleSettings, Membership
from hub.resolvers import access
from hub.resolvers.lifecycle_settings import DEFAULT_LEAD_DAYS
from hub.worker.handlers import Chunk, JobContext, JSONCursor, Plan
from hub.worker.schedules import Schedule

log = logging.getLogger(__name__)
MAX_WITHIN_DAYS = 3660

_OPEN_POINTS = (
    " FROM lot l JOIN account a ON a.id = l.account_id"
    " WHERE a.kind = 'member' AND a.asset = 'points' AND l.remaining > 0"
    " AND l.expires_at IS NOT NULL AND l.expires_at > ? AND l.expires_at <= ?"
)


def _stamp(conn: Any, moment: datetime) -> Any:
    return moment if conn.capabilities.dialect == "postgres" else moment.astimezone(UTC).isoformat(" ")


def _within(days: int, field: str = "withinDays") -> timedelta:
    if not 1 <= days <= MAX_WITHIN_DAYS:
        raise InvalidInput(f"Between 1 and {MAX_WITHIN_DAYS} days.", field)
    return timedelta(days=days)


@dataclass(frozen=True, slots=True)
class Expiring:
    points: int
    expires_at: datetime


async def expiring_of(
    membership: Membership, within_days: int, now: datetime | None = None
) -> list[Expiring]:
    """The membership's available points that expire in the next ``within_days``, by date."""
    now = now or datetime.now(UTC)
    horizon = now + _within(within_days)
    conn = connections.get("default")
    _, rows = await conn.execute_query(
        sql(
            conn,
            "SELECT l.expires_at, SUM(l.remaining) AS points"
            + _OPEN_POINTS
            + " AND a.membership_id = ? GROUP BY l.expires_at ORDER BY l.expires_at LIMIT 100",
        ),
        [_stamp(conn, now), _stamp(conn, horizon), membership.id],
    )
    return [Expiring(int(r["points"]), as_datetime(r["expires_at"])) for r in rows]  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ExpiringMembership:
    membership_id: int
    points: int  # expiring within the window
    first_expires_at: datetime  # the soonest date in it


@dataclass(frozen=True, slots=True)
class ExpiringPage:
    items: list[ExpiringMembership]
    has_next_page: bool
    has_previous_page: bool


async def memberships_expiring(
    principal: Principal | None,
    brand_id: int,
    within_days: int,
    first: int,
    after: int | None,
    max_page: int,
) -> ExpiringPage:
    """HQ: the brand's memberships with points expiring in the next ``within_days``, by membership id."""
    brand = await access.get_brand(principal, policy.LIST_EXPIRING, brand_id)
    if not 0 <= first <= max_page:
        raise InvalidInput(f"first must be between 0 and {max_page}.", "first")
    now = datetime.now(UTC)
    horizon = now + _within(within_days)
    conn = connections.get("default")
    window = [_stamp(conn, now), _stamp(conn, horizon), brand.id]
    _, rows = await conn.execute_query(
        sql(
            conn,
            "SELECT a.membership_id, SUM(l.remaining) AS points, MIN(l.expires_at) AS first_at"
            + _OPEN_POINTS
            + " AND a.brand_id = ? AND a.membership_id > ?"
            f" GROUP BY a.membership_id ORDER BY a.membership_id LIMIT {int(first) + 1}",
        ),
        [*window, after or 0],
    )
    items = [
        ExpiringMembership(int(r["membership_id"]), int(r["points"]), as_datetime(r["first_at"]))  # type: ignore[arg-type]
        for r in rows
    ]
    before = False
    if after is not None:
        _, probe = await conn.execute_query(
            sql(
                conn, "SELECT 1 AS x" + _OPEN_POINTS + " AND a.brand_id = ? AND a.membership_id <= ? LIMIT 1"
            ),
            [*window, after],
        )
        before = bool(probe)
    return ExpiringPage(items[:first], len(items) > first, before)


# --- notices ----------------------------------------------------------------------------------------


async def watched_membership(principal: Principal | None, membership_id: int) -> Membership:
    return await access.get_membership(principal, policy.WATCH_EXPIRING, membership_id)


def expiring_channel(membership_id: int) -> str:
    return f"expiring:m{membership_id}"


@dataclass(frozen=True, slots=True)
class PointsExpiring:
    """One notice: ``points`` of the membership expire at ``expires_at``; told ``lead_days`` ahead."""

    notice_id: int
    membership_id: int
    brand_id: int
    points: int
    expires_at: datetime
    lead_days: int

    def to_message(self) -> dict[str, Any]:
        return {
            "noticeId": self.notice_id,
            "membershipId": self.membership_id,
            "brandId": self.brand_id,
            "points": self.points,
            "expiresAt": self.expires_at.isoformat(),
            "leadDays": self.lead_days,
        }

    @classmethod
    def from_message(cls, m: dict[str, Any]) -> PointsExpiring:
        return cls(
            int(m["noticeId"]),
            int(m["membershipId"]),
            int(m["brandId"]),
            int(m["points"]),
            datetime.fromisoformat(m["expiresAt"]),
            int(m["leadDays"]),
        )

    @classmethod
    def of(cls, n: ExpiryNotice) -> PointsExpiring:
        return cls(n.id, n.membership_id, n.brand_id, int(n.points), n.expires_at, n.lead_days)


async def lead_days_by_brand() -> dict[int, tuple[int, ...]]:
    conn = connections.get("default")
    _, brands = await conn.execute_query("SELECT id FROM brand ORDER BY id")
    chosen = dict(await LifecycleSettings.all().values_list("brand_id", "notice_lead_days"))
    return {int(b["id"]): tuple(int(d) for d in chosen.get(b["id"], DEFAULT_LEAD_DAYS)) for b in brands}


_INSERT_NOTICES = (
    "INSERT INTO expiry_notice (brand_id, membership_id, expires_at, lead_days, points, created_at)"
    " SELECT a.brand_id, a.membership_id, l.expires_at, ?, SUM(l.remaining), ?"
    + _OPEN_POINTS
    + " AND a.brand_id = ? GROUP BY a.brand_id, a.membership_id, l.expires_at"
    " ON CONFLICT (membership_id, expires_at, lead_days) DO NOTHING"
    " RETURNING id, brand_id, membership_id, expires_at, lead_days, points"
)


async def make_notices(brand_id: int, leads: Sequence[int], now: datetime) -> list[PointsExpiring]:
    """Write the brand's notices due at ``now`` (each at most once: the unique key); returns the new ones.

    Lead times ascending: a batch expiring within the shortest lead gets that lead's notice only, one
    between two leads gets the longer one's.
    """
    made: list[PointsExpiring] = []
    previous = timedelta(0)
    async with in_transaction() as conn:
        for lead in sorted(set(leads)):
            window = timedelta(days=lead)
            # execute_query_dict: Tortoise's execute_query drops what an INSERT returns on PostgreSQL.
            rows = await conn.execute_query_dict(
                sql(conn, _INSERT_NOTICES),
                [lead, _stamp(conn, now), _stamp(conn, now + previous), _stamp(conn, now + window), brand_id],
            )
            made += [
                PointsExpiring(
                    int(r["id"]),
                    int(r["membership_id"]),
                    int(r["brand_id"]),
                    int(r["points"]),
                    as_datetime(r["expires_at"]),  # type: ignore[arg-type]
                    int(r["lead_days"]),
                )
                for r in rows
            ]
            previous = window
    return made


async def publish(broker: LocalBroker | None, notices: Sequence[PointsExpiring]) -> None:
    """Announce committed notices, then mark them published. Best effort: the rows are the truth."""
    if not notices:
        return
    if broker is not None:
        try:
            await broker.publish_many([(expiring_channel(n.membership_id), n.to_message()) for n in notices])
        except Exception:  # the next run publishes what is unmarked
            log.warning("could not publish %d expiry notices", len(notices), exc_info=True)
            return
    await ExpiryNotice.filter(id__in=[n.notice_id for n in notices]).update(published_at=datetime.now(UTC))


async def unpublished(brand_id: int, older_than: datetime) -> list[PointsExpiring]:
    rows = (
        await ExpiryNotice.filter(brand_id=brand_id, published_at__isnull=True, created_at__lt=older_than)
        .order_by("id")
        .limit(5000)
    )
    return [PointsExpiring.of(n) for n in rows]


async def notify_brand(broker: LocalBroker | None, brand_id: int, leads: Sequence[int], now: datetime) -> int:
    """One brand's notices: what a crashed run left unpublished, then the new ones."""
    await publish(broker, await unpublished(brand_id, now - timedelta(minutes=1)))
    made = await make_notices(brand_id, leads, now)
    await publish(broker, made)
    return len(made)


NOTIFY_KIND = "lifecycle.notify"
NOTIFY_SCHEDULE = Schedule("expiry-notices", NOTIFY_KIND, timedelta(minutes=15))


class NotifyExpiring:
    """The ``lifecycle.notify`` job: items are brands, in id order."""

    kind = NOTIFY_KIND

    async def plan(self, ctx: JobContext) -> Plan:
        brands = await lead_days_by_brand()
        if ctx.brand_id is not None:
            brands = {b: leads for b, leads in brands.items() if b == ctx.brand_id}
        raw = ctx.params.get("at") or ctx.params.get("periodStart")
        at = datetime.fromisoformat(raw) if raw else datetime.now(UTC)
        return Plan(total=len(brands), cursor={"after": 0, "at": at.isoformat()})

    async def run_chunk(self, ctx: JobContext, cursor: JSONCursor) -> Chunk:
        brands = sorted(
            (b, leads) for b, leads in (await lead_days_by_brand()).items() if b > cursor["after"]
        )
        if ctx.brand_id is not None:
            brands = [(b, leads) for b, leads in brands if b == ctx.brand_id]
        if not brands:
            return Chunk(None, 0)
        ctx.ensure_lease()
        brand_id, leads = brands[0]
        await notify_brand(ctx.broker, brand_id, leads, datetime.fromisoformat(cursor["at"]))
        return Chunk({**cursor, "after": brand_id}, 1)


async def notice_events(
    broker: LocalBroker, membership_ids: Sequence[int], after: int | None
) -> AsyncGenerator[PointsExpiring, None]:
    """Notices of these memberships: those after notice ``after`` first (from the rows), then live
    ones; none twice (a notice published again after a crash is skipped by its id)."""
    seen: set[int] = set()
    async with broker.subscribe([expiring_channel(m) for m in membership_ids]) as sub:
        last = after
        if after is not None:
            for n in await ExpiryNotice.filter(membership_id__in=list(membership_ids), id__gt=after).order_by(
                "id"
            ):
                seen.add(n.id)
                last = n.id
                yield PointsExpiring.of(n)
        while True:
            message = await sub.get()
            if message is RESYNC or not isinstance(message, dict):
                if last is not None:
                    for n in await ExpiryNotice.filter(
                        membership_id__in=list(membership_ids), id__gt=last
                    ).order_by("id"):
                        if n.id not in seen:
                            seen.add(n.id)
                            last = n.id
                            yield PointsExpiring.of(n)
                continue
            event = PointsExpiring.from_message(message)
            if event.notice_id in seen:
                continue
            seen.add(event.notice_id)
            last = max(last or 0, event.notice_id)
            yield event

"""Segments: which of a brand's members a bulk grant (or a win-back campaign) reaches.

A ``Segment`` is a conjunction of optional filters; with none it is every member of the brand. It is
evaluated in SQL, once, at a snapshot time (``select_sql(..., at)``): a bulk grant fixes its set of
members that way when it is planned, so balances and purchases that change afterwards do not change
who is granted. Members who joined after the snapshot time are not part of it.

| filter | matches a membership whose ... |
| --- | --- |
| ``tiers`` | tier is one of these |
| ``join_store_ids`` | enrolment store is one of these |
| ``last_purchase_before`` | latest purchase was before this instant (never purchased: no match) |
| ``last_purchase_on_or_after`` | latest purchase was at or after this instant (never purchased: no match) |
| ``min_points`` / ``max_points`` | available points are within these bounds, both inclusive (no account: 0) |

The GraphQL input takes brand-local dates for the purchase bounds: a date means the start of that day
in the brand's time zone (``segment_for``).

Adding a filter (``lifecycle`` adds "lapsed N days"): a field here, its condition in ``_conditions``,
its parameter in ``to_params``/``from_params``, its check in ``segment_for``, its field on the GraphQL
``SegmentInput`` (hub/schema/grants.py), and a row in tests/grants/test_segments.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from hub.db import sql
from hub.errors import InvalidInput, NotFound
from hub.ledger.policy import BALANCE_LIMIT
from hub.models import Brand, Store

MAX_TIERS = 20
MAX_STORES = 100


@dataclass(frozen=True, slots=True)
class Segment:
    tiers: tuple[str, ...] = ()
    join_store_ids: tuple[int, ...] = ()
    last_purchase_before: datetime | None = None  # UTC
    last_purchase_on_or_after: datetime | None = None  # UTC
    min_points: int | None = None
    max_points: int | None = None

    @property
    def is_everyone(self) -> bool:
        return self == Segment()

    def to_params(self) -> dict[str, Any]:
        """JSON for a job's parameters; ``from_params`` reads it back exactly."""
        return {
            "tiers": list(self.tiers),
            "joinStoreIds": list(self.join_store_ids),
            "lastPurchaseBefore": _iso(self.last_purchase_before),
            "lastPurchaseOnOrAfter": _iso(self.last_purchase_on_or_after),
            "minPoints": self.min_points,
            "maxPoints": self.max_points,
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Segment:
        return cls(
            tiers=tuple(params.get("tiers") or ()),
            join_store_ids=tuple(int(s) for s in params.get("joinStoreIds") or ()),
            last_purchase_before=_instant(params.get("lastPurchaseBefore")),
            last_purchase_on_or_after=_instant(params.get("lastPurchaseOnOrAfter")),
            min_points=params.get("minPoints"),
            max_points=params.get("maxPoints"),
        )

    @property
    def reads_balance(self) -> bool:
        return self.min_points is not None or self.max_points is not None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _value(conn: BaseDBAsyncClient, value: Any) -> Any:
    # SQLite keeps timestamps as the ISO text Tortoise writes (UTC, "YYYY-MM-DD HH:MM:SS[.ffffff]+00:00").
    if isinstance(value, datetime) and conn.capabilities.dialect != "postgres":
        return value.isoformat(" ")
    return value


def _conditions(segment: Segment) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``ms`` (membership) and ``a`` (its points account, when the balance is read)."""
    where: list[str] = []
    args: list[Any] = []
    if segment.tiers:
        where.append(f"ms.tier IN ({', '.join('?' * len(segment.tiers))})")
        args += segment.tiers
    if segment.join_store_ids:
        where.append(f"ms.join_store_id IN ({', '.join('?' * len(segment.join_store_ids))})")
        args += segment.join_store_ids
    if segment.last_purchase_before is not None:
        where.append("ms.last_purchase_at < ?")
        args.append(segment.last_purchase_before)
    if segment.last_purchase_on_or_after is not None:
        where.append("ms.last_purchase_at >= ?")
        args.append(segment.last_purchase_on_or_after)
    if segment.min_points is not None:
        where.append("COALESCE(a.balance, 0) >= ?")
        args.append(segment.min_points)
    if segment.max_points is not None:
        where.append("COALESCE(a.balance, 0) <= ?")
        args.append(segment.max_points)
    return where, args


def select_sql(
    conn: BaseDBAsyncClient, segment: Segment, brand_id: int, at: datetime, columns: str = "ms.id"
) -> tuple[str, list[Any]]:
    """``SELECT <columns>`` of the brand's memberships in the segment as of ``at`` (who had joined by
    then), ready for ``conn`` (placeholders and values of its dialect)."""
    where, args = _conditions(segment)
    joins = ""
    if segment.reads_balance:
        joins = (
            " LEFT JOIN account a ON a.membership_id = ms.id AND a.kind = 'member'"
            " AND a.asset = 'points' AND a.asset_code = ''"
        )
    conditions = " AND ".join(["ms.brand_id = ?", "ms.created_at <= ?", *where])
    query = f"SELECT {columns} FROM membership ms{joins} WHERE {conditions}"
    return sql(conn, query), [_value(conn, v) for v in [brand_id, at, *args]]


async def count(segment: Segment, brand_id: int, at: datetime) -> int:
    conn = connections.get("default")
    query, args = select_sql(conn, segment, brand_id, at, "COUNT(*)")
    _, rows = await conn.execute_query(query, args)
    return int(rows[0][0])


async def member_ids(segment: Segment, brand_id: int, at: datetime) -> list[int]:
    """The segment's membership ids in order (tests and small campaigns; bulk grants insert them)."""
    conn = connections.get("default")
    query, args = select_sql(conn, segment, brand_id, at)
    _, rows = await conn.execute_query(query + " ORDER BY ms.id", args)
    return [int(r[0]) for r in rows]


def _local_midnight(brand: Brand, day: date) -> datetime:
    return datetime.combine(day, time(), ZoneInfo(brand.timezone))


async def segment_for(
    brand: Brand,
    *,
    tiers: Sequence[str] | None = None,
    join_store_ids: Sequence[int] | None = None,
    last_purchase_before: date | None = None,
    last_purchase_on_or_after: date | None = None,
    min_points: int | None = None,
    max_points: int | None = None,
    field: str = "segment",
) -> Segment:
    """Check a segment as a client gives it: dates are brand-local days, stores must be the brand's."""
    tier_names = sorted({t.strip() for t in tiers or ()})
    if len(tier_names) > MAX_TIERS:
        raise InvalidInput(f"At most {MAX_TIERS} tiers.", f"{field}.tiers")
    if any(not 0 < len(t) <= 32 for t in tier_names):
        raise InvalidInput("A tier name has 1 to 32 characters.", f"{field}.tiers")
    store_ids = sorted(set(join_store_ids or ()))
    if len(store_ids) > MAX_STORES:
        raise InvalidInput(f"At most {MAX_STORES} stores.", f"{field}.joinStoreIds")
    if store_ids and await Store.filter(id__in=store_ids, brand_id=brand.id).count() != len(store_ids):
        raise NotFound("No such store.", f"{field}.joinStoreIds")
    for name, bound in (("minPoints", min_points), ("maxPoints", max_points)):
        if bound is not None and not -BALANCE_LIMIT <= bound <= BALANCE_LIMIT:
            raise InvalidInput(f"Between {-BALANCE_LIMIT} and {BALANCE_LIMIT}.", f"{field}.{name}")
    if min_points is not None and max_points is not None and min_points > max_points:
        raise InvalidInput("minPoints must not be above maxPoints.", f"{field}.minPoints")
    before = _local_midnight(brand, last_purchase_before) if last_purchase_before else None
    since = _local_midnight(brand, last_purchase_on_or_after) if last_purchase_on_or_after else None
    if before is not None and since is not None and since >= before:
        raise InvalidInput(
            "lastPurchaseOnOrAfter must be earlier than lastPurchaseBefore.", f"{field}.lastPurchaseOnOrAfter"
        )
    return Segment(
        tiers=tuple(tier_names),
        join_store_ids=tuple(store_ids),
        last_purchase_before=before.astimezone(UTC) if before else None,
        last_purchase_on_or_after=since.astimezone(UTC) if since else None,
        min_points=min_points,
        max_points=max_points,
    )

"""Reports for a brand's HQ (docs/reports.md): liability, activity per period and store, cohorts.

Activity reads the rollups (``report_day`` rows folded by the worker, plus the ``report_delta`` rows
not folded yet, in one statement so a fold running meanwhile is seen whole or not at all), so its cost
follows the number of days, stores and kinds in the range, not the number of postings. Figures are
points of the brand's points asset; kinds are read as the ledger stores them:

- issued, by kind: points that left the brand's issuance accounts (net of what came back to them,
  e.g. a reversed earn);
- redeemed, by kind: points that reached the brand's burn accounts, except expiry and adjustments;
- expired: what the ``expire`` kind burnt; adjusted: what ``adjust`` moved to members, net.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hub import policy
from hub.auth import Principal
from hub.db import fetch
from hub.domain import AccountKind, Asset, ReportPeriod, TransactionKind
from hub.errors import InvalidInput
from hub.models import Brand
from hub.resolvers import access

MAX_DAYS = 3 * 366  # the longest range a report covers (a daily report of it is ~1,100 rows)
_NOT_REDEEMED = {TransactionKind.EXPIRE.value, TransactionKind.ADJUST.value}


async def report_brand(principal: Principal | None, brand_id: int) -> Brand:
    """The brand whose reports the caller may read (HQ: its own; platform: any); NOT_FOUND otherwise."""
    return await access.get_brand(principal, policy.READ_REPORTS, brand_id)


# --- periods ----------------------------------------------------------------------------------------


def period_start(day: date, period: ReportPeriod) -> date:
    if period is ReportPeriod.WEEK:
        return day - timedelta(days=day.weekday())
    if period is ReportPeriod.MONTH:
        return day.replace(day=1)
    return day


def period_last_day(start: date, period: ReportPeriod) -> date:
    if period is ReportPeriod.WEEK:
        return start + timedelta(days=6)
    if period is ReportPeriod.MONTH:
        following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        return following - timedelta(days=1)
    return start


def check_range(first: date, last: date) -> None:
    if last < first:
        raise InvalidInput("`to` is before `from`.", "to")
    if (last - first).days >= MAX_DAYS:
        raise InvalidInput(f"A report covers at most {MAX_DAYS} days.", "to")


def local_bounds(zone: ZoneInfo, first: date, last: date) -> tuple[datetime, datetime]:
    """The UTC instants of ``first``'s brand-local midnight and of the midnight after ``last``."""
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def local_day(zone: ZoneInfo, moment: datetime) -> date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).date()


def _day_param(value: date) -> Any:
    return value if _postgres() else value.isoformat()


def _time_param(value: datetime) -> Any:
    return value if _postgres() else value.astimezone(UTC).isoformat(" ")


def _postgres() -> bool:
    from tortoise import connections

    return bool(connections.get("default").capabilities.dialect == "postgres")


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _as_datetime(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- the rollups ------------------------------------------------------------------------------------

_KEYS = "kind, asset, asset_code, account_kind"
_SUMS = "SUM(credit) AS credit, SUM(debit) AS debit, SUM(count) AS count, SUM(purchases) AS purchases,"
_SUMS += " SUM(sales_fen) AS sales_fen"
# Points on the brand's issuance and burn accounts, and the transactions' own rows.
_WANTED = "(account_kind = '' OR (asset = 'points' AND account_kind IN ('issuance', 'burn')))"
# The first day of a folded day's period, computed by the database: a year by month is then a few dozen
# rows, whatever the number of days, stores and shards folded.
_PERIOD_START = {
    (True, ReportPeriod.DAY): "day",
    (True, ReportPeriod.WEEK): "CAST(date_trunc('week', day) AS date)",
    (True, ReportPeriod.MONTH): "CAST(date_trunc('month', day) AS date)",
    (False, ReportPeriod.DAY): "day",
    (
        False,
        ReportPeriod.WEEK,
    ): "date(day, '-' || ((CAST(strftime('%w', day) AS INTEGER) + 6) % 7) || ' days')",
    (False, ReportPeriod.MONTH): "strftime('%Y-%m-01', day)",
}


def rollup_query(postgres: bool, period: ReportPeriod, by_store: bool) -> str:
    """Folded days summed per period (and store), then the deltas not folded yet, in one statement."""
    start = _PERIOD_START[(postgres, period)]
    store, grouped = ("store_id", "store_id, ") if by_store else ("0", "")
    return (
        f"SELECT {start} AS day, NULL AS at, {store} AS store_id, {_KEYS}, {_SUMS} FROM report_day"
        f" WHERE brand_id = ? AND day >= ? AND day <= ? AND {_WANTED}"
        f" GROUP BY {start}, {grouped}{_KEYS}"
        f" UNION ALL SELECT NULL, at, store_id, {_KEYS}, {_SUMS} FROM report_delta"
        f" WHERE brand_id = ? AND at >= ? AND at < ? AND {_WANTED} GROUP BY at, store_id, {_KEYS}"
    )


@dataclass(frozen=True)
class RollupRow:
    day: date  # brand-local: a delta's day, or the first day of a folded period
    store_id: int | None
    kind: str
    asset: str
    asset_code: str
    account_kind: str
    credit: int
    debit: int
    count: int
    purchases: int
    sales_fen: int
    folded: bool = False  # summed per period by the database, within the range already


async def rollup_rows(
    brand: Brand,
    first: date,
    last: date,
    period: ReportPeriod = ReportPeriod.DAY,
    by_store: bool = True,
) -> list[RollupRow]:
    """The brand's rollups of the days ``first`` to ``last`` (brand-local), folded or not."""
    zone = ZoneInfo(brand.timezone)
    start, end = local_bounds(zone, first, last)
    rows = await fetch(
        rollup_query(_postgres(), period, by_store),
        [
            brand.id,
            _day_param(first),
            _day_param(last),
            brand.id,
            _time_param(start),
            _time_param(end),
        ],
    )
    out = []
    for r in rows:
        folded = r["day"] is not None
        day = _as_date(r["day"]) if folded else local_day(zone, _as_datetime(r["at"]))
        out.append(
            RollupRow(
                day=day,
                store_id=int(r["store_id"]) or None,
                kind=r["kind"],
                asset=r["asset"],
                asset_code=r["asset_code"],
                account_kind=r["account_kind"],
                credit=int(r["credit"]),
                debit=int(r["debit"]),
                count=int(r["count"]),
                purchases=int(r["purchases"]),
                sales_fen=int(r["sales_fen"]),
                folded=folded,
            )
        )
    return out


# --- activity ---------------------------------------------------------------------------------------


@dataclass
class Activity:
    """One period's (and, when asked by store, one store's) points activity."""

    start: date
    last_day: date
    store_id: int | None = None
    issued_by_kind: dict[str, int] = field(default_factory=dict)
    burned_by_kind: dict[str, int] = field(default_factory=dict)
    transactions: int = 0
    purchases: int = 0
    sales_fen: int = 0

    @property
    def issued_kinds(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.issued_by_kind.items()) if v and k != TransactionKind.ADJUST}

    @property
    def redeemed_kinds(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.burned_by_kind.items()) if v and k not in _NOT_REDEEMED}

    @property
    def issued(self) -> int:
        return sum(self.issued_kinds.values())

    @property
    def redeemed(self) -> int:
        return sum(self.redeemed_kinds.values())

    @property
    def expired(self) -> int:
        return self.burned_by_kind.get(TransactionKind.EXPIRE.value, 0)

    @property
    def adjusted(self) -> int:
        adjust = TransactionKind.ADJUST.value
        return self.issued_by_kind.get(adjust, 0) - self.burned_by_kind.get(adjust, 0)

    @property
    def redemption_rate(self) -> float | None:
        """Points redeemed ÷ points issued in the period; None when none were issued."""
        return self.redeemed / self.issued if self.issued > 0 else None

    def add(self, row: RollupRow) -> None:
        if row.account_kind == "":
            self.transactions += row.count
            self.purchases += row.purchases
            self.sales_fen += row.sales_fen
        elif row.account_kind == AccountKind.ISSUANCE:
            self.issued_by_kind[row.kind] = self.issued_by_kind.get(row.kind, 0) + row.debit - row.credit
        elif row.account_kind == AccountKind.BURN:
            self.burned_by_kind[row.kind] = self.burned_by_kind.get(row.kind, 0) + row.credit - row.debit


def summarise(
    rows: Iterable[RollupRow], first: date, last: date, period: ReportPeriod, by_store: bool
) -> list[Activity]:
    """Rollup rows summed per period (and store): every period of the range, empty ones too."""
    out: dict[tuple[date, int | None], Activity] = {}
    start = period_start(first, period)
    while start <= last:
        if not by_store:
            out[(start, None)] = Activity(start, period_last_day(start, period))
        start = period_last_day(start, period) + timedelta(days=1)
    for row in rows:
        if not (row.folded or first <= row.day <= last) or row.asset not in ("", Asset.POINTS):
            continue
        begins = period_start(row.day, period)
        store = row.store_id if by_store else None
        activity = out.get((begins, store))
        if activity is None:
            activity = out[(begins, store)] = Activity(begins, period_last_day(begins, period), store)
        activity.add(row)
    return sorted(out.values(), key=lambda a: (a.start, a.store_id or 0))


async def activity(
    principal: Principal | None,
    brand_id: int,
    first: date,
    last: date,
    period: ReportPeriod = ReportPeriod.DAY,
    by_store: bool = False,
) -> list[Activity]:
    """Points activity of the brand-local days ``first`` to ``last`` per period (and store)."""
    brand = await report_brand(principal, brand_id)
    return await brand_activity(brand, first, last, period, by_store)


async def brand_activity(
    brand: Brand, first: date, last: date, period: ReportPeriod, by_store: bool
) -> list[Activity]:
    check_range(first, last)
    rows = await rollup_rows(brand, first, last, period, by_store)
    return summarise(rows, first, last, period, by_store)


# --- liability --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssetTotal:
    """The sum of one kind of account's balances for one asset (e.g. members' stored value bonus)."""

    asset: str
    asset_code: str
    account_kind: str
    balance: int
    accounts: int


@dataclass(frozen=True)
class StoreLiability:
    store_id: int | None  # the store whose transaction issued the points; None: no store (HQ, jobs)
    available: int
    pending: int


@dataclass(frozen=True)
class Liability:
    point_value_points: int
    point_value_fen: int
    assets: list[AssetTotal]
    by_store: list[StoreLiability]

    def _points(self, kind: AccountKind) -> int:
        return sum(a.balance for a in self.assets if a.asset == Asset.POINTS and a.account_kind == kind)

    @property
    def available(self) -> int:
        return self._points(AccountKind.MEMBER)

    @property
    def pending(self) -> int:
        return self._points(AccountKind.PENDING)

    def value_fen(self, points: int) -> int:
        """What ``points`` are worth at the brand's point value, rounded down to the fen."""
        return points * self.point_value_fen // self.point_value_points


ASSET_TOTALS = (
    "SELECT asset, asset_code, kind, SUM(balance) AS balance, COUNT(*) AS accounts FROM account"
    " WHERE brand_id = ? GROUP BY asset, asset_code, kind ORDER BY asset, asset_code, kind"
)
# Open lots of members' points by the store of the transaction that issued them. A matured lot was
# made by the maturity transaction, which drew exactly one pending lot: that lot's transaction issued it.
LOTS_BY_STORE = (
    "SELECT COALESCE(ot.store_id, t.store_id, 0) AS store_id, a.kind, SUM(l.remaining) AS remaining"
    " FROM lot l JOIN account a ON a.id = l.account_id"
    " JOIN ledger_transaction t ON t.id = l.transaction_id"
    " LEFT JOIN lot_allocation la ON t.kind = 'mature' AND la.transaction_id = t.id"
    " LEFT JOIN lot ol ON ol.id = la.lot_id"
    " LEFT JOIN ledger_transaction ot ON ot.id = ol.transaction_id"
    " WHERE a.brand_id = ? AND a.asset = 'points' AND a.kind IN ('member', 'pending') AND l.remaining > 0"
    " GROUP BY COALESCE(ot.store_id, t.store_id, 0), a.kind"
)


async def liability(principal: Principal | None, brand_id: int) -> Liability:
    brand = await report_brand(principal, brand_id)
    return await brand_liability(brand)


async def brand_liability(brand: Brand) -> Liability:
    """What the brand's accounts hold now: every asset generically, and members' points by store of issue.

    Reads the account rows (one per member and asset) and the open lots, not the postings."""
    assets = [
        AssetTotal(r["asset"], r["asset_code"], r["kind"], int(r["balance"]), int(r["accounts"]))
        for r in await fetch(ASSET_TOTALS, [brand.id])
    ]
    stores: dict[int, dict[str, int]] = defaultdict(lambda: {"member": 0, "pending": 0})
    for r in await fetch(LOTS_BY_STORE, [brand.id]):
        stores[int(r["store_id"])][r["kind"]] += int(r["remaining"])
    by_store = [
        StoreLiability(store_id or None, held["member"], held["pending"])
        for store_id, held in sorted(stores.items())
    ]
    return Liability(brand.point_value_points, brand.point_value_fen, assets, by_store)

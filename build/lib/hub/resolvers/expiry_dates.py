"""When earned points expire, by policy: pure date arithmetic in the brand's time zone.

Every expiry is an instant at a brand-local midnight (except a clearing date, which HQ gives as an
instant), so "points earned on 15 March expire at the end of 14 April" is the instant
15 April 00:00 in the brand's zone. Points are spendable strictly before ``expires_at``.

- ``DAYS n``: through the end of the local day n days after the earning's local day.
- ``MONTHS n``: through the end of the local day n calendar months later; a day the month does not
  have is its last day (31 January + 1 month: the end of 28 or 29 February).
- ``PERIOD_END n`` (month, quarter, year): at the end of the period n periods after the one the points
  were earned in (n = 0: the end of the earning's own period). Points earned in 2026 with ``year, 1``
  expire at the end of 2027 (the year-end clearing, 年底清零).
- ``CLEARING_DATE``: at that instant; points earned at or after it never expire under this policy (HQ
  sets a new one).
- ``NEVER``: no expiry.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hub.domain import ExpiryKind, ExpiryPeriod

_PERIOD_MONTHS = {ExpiryPeriod.MONTH: 1, ExpiryPeriod.QUARTER: 3, ExpiryPeriod.YEAR: 12}


@dataclass(frozen=True, slots=True)
class ExpiryTerms:
    """What one policy version says (the part that dates lots)."""

    kind: ExpiryKind
    count: int = 0
    period: ExpiryPeriod | None = None
    clearing_at: datetime | None = None


NEVER = ExpiryTerms(ExpiryKind.NEVER)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def expiry_for(terms: ExpiryTerms, earned_at: datetime, timezone: str) -> datetime | None:
    """The instant points earned at ``earned_at`` (aware) stop being spendable; None: never."""
    zone = ZoneInfo(timezone)
    local_day = earned_at.astimezone(zone).date()
    match terms.kind:
        case ExpiryKind.NEVER:
            return None
        case ExpiryKind.DAYS:
            return _local_midnight(local_day + timedelta(days=terms.count + 1), zone)
        case ExpiryKind.MONTHS:
            return _local_midnight(_add_months(local_day, terms.count) + timedelta(days=1), zone)
        case ExpiryKind.PERIOD_END:
            assert terms.period is not None
            size = _PERIOD_MONTHS[terms.period]
            start_month = (local_day.month - 1) // size * size  # months from January of this period
            period_start = date(local_day.year, start_month + 1, 1)
            return _local_midnight(_add_months(period_start, size * (terms.count + 1)), zone)
        case ExpiryKind.CLEARING_DATE:
            assert terms.clearing_at is not None
            return terms.clearing_at if earned_at < terms.clearing_at else None
    raise ValueError(f"unknown expiry kind {terms.kind!r}")

"""Each expiry policy's dates, table-driven: month ends, leap years, quarters, year ends, the brand's
time zone (its midnight, not UTC's), and daylight saving time in a zone that has it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from hub.domain import ExpiryKind, ExpiryPeriod
from hub.resolvers.expiry_dates import NEVER, ExpiryTerms, expiry_for

SH, BERLIN = "Asia/Shanghai", "Europe/Berlin"


def local(zone: str, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(zone))  # type: ignore[misc]


def days(n: int) -> ExpiryTerms:
    return ExpiryTerms(ExpiryKind.DAYS, n)


def months(n: int) -> ExpiryTerms:
    return ExpiryTerms(ExpiryKind.MONTHS, n)


def end_of(period: ExpiryPeriod, n: int) -> ExpiryTerms:
    return ExpiryTerms(ExpiryKind.PERIOD_END, n, period)


M, Q, Y = ExpiryPeriod.MONTH, ExpiryPeriod.QUARTER, ExpiryPeriod.YEAR

CASES = [
    # (terms, zone, earned at (local), expires at (local midnight that ends the last valid day))
    (days(1), SH, (2026, 3, 15, 10, 0), (2026, 3, 17)),
    (days(30), SH, (2026, 1, 31, 23, 59), (2026, 3, 3)),
    (days(365), SH, (2027, 3, 1, 0, 0), (2028, 3, 1)),  # a leap year's 29 February counts
    (days(1), SH, (2028, 2, 28, 12, 0), (2028, 3, 1)),
    # Earned at 23:30 Shanghai = 15:30 UTC: the Shanghai day decides, not the UTC one.
    (days(1), SH, (2026, 6, 30, 23, 30), (2026, 7, 2)),
    (months(1), SH, (2026, 1, 31, 9, 0), (2026, 3, 1)),  # 31 Jan + 1 month = 28 Feb, its end
    (months(1), SH, (2028, 1, 31, 9, 0), (2028, 3, 1)),  # 29 Feb in a leap year
    (months(1), SH, (2026, 3, 31, 9, 0), (2026, 5, 1)),  # 30 April
    (months(12), SH, (2028, 2, 29, 9, 0), (2029, 3, 1)),  # no 29 Feb 2029: 28 Feb, its end
    (months(2), SH, (2026, 12, 15, 9, 0), (2027, 2, 16)),
    (end_of(M, 0), SH, (2026, 2, 10, 9, 0), (2026, 3, 1)),
    (end_of(M, 1), SH, (2026, 1, 31, 23, 59), (2026, 3, 1)),
    (end_of(M, 1), SH, (2026, 12, 1, 0, 0), (2027, 2, 1)),
    (end_of(Q, 0), SH, (2026, 5, 20, 9, 0), (2026, 7, 1)),
    (end_of(Q, 1), SH, (2026, 12, 31, 23, 59), (2027, 4, 1)),  # Q4, then the end of Q1
    (end_of(Q, 1), SH, (2026, 1, 1, 0, 0), (2026, 7, 1)),
    (end_of(Y, 0), SH, (2026, 7, 1, 9, 0), (2027, 1, 1)),
    # 年底清零: points earned in 2026 expire at the end of 2027.
    (end_of(Y, 1), SH, (2026, 1, 1, 0, 0), (2028, 1, 1)),
    (end_of(Y, 1), SH, (2026, 12, 31, 23, 59), (2028, 1, 1)),
    # Berlin: DST starts 29 March 2026 and ends 25 October 2026; midnights stay local.
    (days(1), BERLIN, (2026, 3, 28, 12, 0), (2026, 3, 30)),
    (days(1), BERLIN, (2026, 10, 24, 12, 0), (2026, 10, 26)),
    (end_of(M, 0), BERLIN, (2026, 3, 5, 12, 0), (2026, 4, 1)),
    (end_of(Y, 0), BERLIN, (2026, 12, 31, 23, 30), (2027, 1, 1)),
]


@pytest.mark.parametrize(("terms", "zone", "earned", "expires"), CASES)
def test_policy_dates(terms: ExpiryTerms, zone: str, earned: tuple, expires: tuple) -> None:
    at = expiry_for(terms, local(zone, *earned).astimezone(UTC), zone)
    assert at == local(zone, *expires).astimezone(UTC)
    assert at is not None and at.tzinfo is not None


def test_berlin_midnight_is_23_or_22_utc_by_season() -> None:
    winter = expiry_for(days(0), local(BERLIN, 2026, 1, 10, 12, 0), BERLIN)
    summer = expiry_for(days(0), local(BERLIN, 2026, 7, 10, 12, 0), BERLIN)
    assert winter == datetime(2026, 1, 10, 23, 0, tzinfo=UTC)
    assert summer == datetime(2026, 7, 10, 22, 0, tzinfo=UTC)


def test_never_and_clearing_date() -> None:
    earned = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert expiry_for(NEVER, earned, SH) is None
    clearing = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)  # 1 January 2027 00:00 in Shanghai
    terms = ExpiryTerms(ExpiryKind.CLEARING_DATE, clearing_at=clearing)
    assert expiry_for(terms, earned, SH) == clearing
    # Points earned at or after the clearing date are not dated by it.
    assert expiry_for(terms, clearing, SH) is None
    assert expiry_for(terms, datetime(2027, 1, 2, tzinfo=UTC), SH) is None

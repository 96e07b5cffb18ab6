"""Daily check-in: once a brand-local day under any concurrency, streaks and their bonuses, midnight in
the brand's time zone, bad input, and a reward whose row was lost in a crash."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from hub.auth import Principal
from hub.domain import Role
from hub.ledger.engine import LedgerWriter
from hub.models import Brand as BrandRow
from hub.models import CheckIn, LedgerTransaction, TransactionKind
from hub.resolvers import checkin
from hub.resolvers.audit import audit_all
from tests.helpers import Api, Brand, World, make_brand, make_world, pk, tamper

CHECK_IN = "checkIn { day streak points transaction { kind } } created balance"
STATUS = (
    "query($m: ID!) { checkInStatus(membershipId: $m) { today checkedInToday streak nextPoints open"
    " checkIns(first: 10) { edges { node { day streak points } } } } }"
)


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def program(
    api: Api, brand: Brand, daily: int, bonuses: dict[int, int], cycle: int | None = None
) -> dict:
    input = {
        "brandId": brand.id,
        "dailyPoints": daily,
        "streakBonuses": [{"day": d, "points": p} for d, p in bonuses.items()],
        "cycleDays": cycle,
    }
    fields = "program { enabled dailyPoints streakBonuses { day points } cycleDays }"
    return await api.mutate("setCheckInProgram", input, brand.hq, fields)


async def new_brand(api: Api, world: World, name: str, daily: int = 5, bonuses: dict | None = None) -> Brand:
    brand = await make_brand(api, world.platform, name)
    out = await program(api, brand, daily, bonuses if bonuses is not None else {3: 20}, None)
    assert out["userErrors"] == [], out
    return brand


def clerk_of(brand: Brand) -> Principal:
    """The brand's first store, for calling the resolver at a chosen time."""
    return Principal(Role.STORE, brand_id=pk(brand.id), store_id=pk(brand.store_id))


async def test_a_member_checks_in_once_a_day_and_sees_the_streak(api: Api, world: World) -> None:
    brand = await new_brand(api, world, "Checkin")
    membership, _, token = await world.enroll(brand)
    first = await api.mutate("checkIn", {"membershipId": membership}, token, CHECK_IN)
    assert first["userErrors"] == [] and first["created"] is True
    assert first["checkIn"]["streak"] == 1 and first["checkIn"]["points"] == 5 and first["balance"] == 5
    assert first["checkIn"]["transaction"]["kind"] == "CHECK_IN"

    again = await api.mutate("checkIn", {"membershipId": membership}, brand.store, CHECK_IN)
    assert again["userErrors"] == [] and again["created"] is False
    assert again["checkIn"] == first["checkIn"] and again["balance"] == 5
    assert await world.balance(membership, brand.hq) == 5

    status = (await api.data(STATUS, {"m": membership}, token))["checkInStatus"]
    assert status["checkedInToday"] is True and status["streak"] == 1 and status["open"] is True
    assert status["nextPoints"] == 5  # tomorrow: day 2 of the streak
    assert status["today"] == first["checkIn"]["day"]
    assert [e["node"]["streak"] for e in status["checkIns"]["edges"]] == [1]
    assert (await world.audit(brand))["ok"]

    # Another member of the brand sees nothing of it; another brand's HQ neither.
    _, _, other = await world.enroll(brand)
    for stranger in (other, world.a.hq):
        body = await api.gql(STATUS, {"m": membership}, stranger)
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        refused = await api.mutate("checkIn", {"membershipId": membership}, other, CHECK_IN)
        assert refused["userErrors"] == [{"code": "NOT_FOUND", "field": "membershipId"}]


async def test_twenty_concurrent_check_ins_reward_once(api: Api, world: World) -> None:
    brand = await new_brand(api, world, "Crowd")
    membership, _, token = await world.enroll(brand)
    callers = [token, brand.store, brand.store2] * 7
    results = await asyncio.gather(
        *(api.mutate("checkIn", {"membershipId": membership}, t, CHECK_IN) for t in callers[:20])
    )
    assert all(r["userErrors"] == [] for r in results), results
    assert sum(r["created"] for r in results) == 1
    assert {(r["checkIn"]["day"], r["checkIn"]["points"], r["balance"]) for r in results} == {
        (results[0]["checkIn"]["day"], 5, 5)
    }
    assert await world.balance(membership, brand.hq) == 5
    rewards = await LedgerTransaction.filter(membership_id=pk(membership), kind=TransactionKind.CHECK_IN)
    assert len(rewards) == 1 and await CheckIn.filter(membership_id=pk(membership)).count() == 1
    assert (await world.audit(brand))["ok"]


SHANGHAI = "Asia/Shanghai"


@pytest.mark.parametrize(
    ("timezone", "first", "second", "same_day"),
    [
        # 23:59 and 00:01 in Shanghai: two days there, though both are 4 November in UTC.
        (
            SHANGHAI,
            datetime(2026, 11, 4, 15, 59, tzinfo=UTC),
            datetime(2026, 11, 4, 16, 1, tzinfo=UTC),
            False,
        ),
        # The same two instants in a UTC brand are one day.
        ("UTC", datetime(2026, 11, 4, 15, 59, tzinfo=UTC), datetime(2026, 11, 4, 16, 1, tzinfo=UTC), True),
        # UTC midnight: two days in a UTC brand, one (08:00 Shanghai) in a Shanghai brand.
        ("UTC", datetime(2026, 11, 4, 23, 59, tzinfo=UTC), datetime(2026, 11, 5, 0, 1, tzinfo=UTC), False),
        (SHANGHAI, datetime(2026, 11, 4, 23, 59, tzinfo=UTC), datetime(2026, 11, 5, 0, 1, tzinfo=UTC), True),
    ],
)
async def test_the_day_changes_at_the_brands_midnight(
    api: Api,
    world: World,
    ledger: LedgerWriter,
    timezone: str,
    first: datetime,
    second: datetime,
    same_day: bool,
) -> None:
    brand = await new_brand(api, world, "Midnight")
    await BrandRow.filter(id=pk(brand.id)).update(timezone=timezone)
    membership, _, _ = await world.enroll(brand)
    clerk = clerk_of(brand)
    one = await checkin.check_in(ledger, clerk, pk(membership), now=first)
    two = await checkin.check_in(ledger, clerk, pk(membership), now=second)
    assert one.created and two.created is not same_day
    if same_day:
        assert two.check_in.id == one.check_in.id and two.balance == 5
    else:
        assert two.check_in.day == one.check_in.day + timedelta(days=1)
        assert (two.check_in.streak, two.balance) == (2, 10)
    report = await audit_all(pk(brand.id))
    assert report.ok, report.violations


async def test_streaks_pay_their_bonus_break_after_a_missed_day_and_repeat_by_cycle(
    api: Api, world: World, ledger: LedgerWriter
) -> None:
    brand = await make_brand(api, world.platform, "Streaks")
    assert (await program(api, brand, 2, {3: 10, 5: 30}, cycle=5))["userErrors"] == []
    membership, _, _ = await world.enroll(brand)
    clerk = clerk_of(brand)
    noon = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # noon in Shanghai
    days = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13]  # day 10 is missed
    got = []
    for d in days:
        result = await checkin.check_in(ledger, clerk, pk(membership), now=noon + timedelta(days=d))
        got.append((result.check_in.streak, result.check_in.points))
    assert got == [
        (1, 2), (2, 2), (3, 12), (4, 2), (5, 32),  # bonuses on days 3 and 5
        (6, 2), (7, 2), (8, 12), (9, 2), (10, 32),  # a cycle of 5: days 8 and 10 again
        (1, 2), (2, 2), (3, 12),  # day 10 missed: a new streak
    ]  # fmt: skip
    assert await world.balance(membership, brand.hq) == sum(p for _, p in got)
    status = await checkin.status(clerk, pk(membership), now=noon + timedelta(days=13))
    assert (status.checked_in_today, status.streak, status.next_points) == (True, 3, 2)
    tomorrow = await checkin.status(clerk, pk(membership), now=noon + timedelta(days=14))
    assert (tomorrow.checked_in_today, tomorrow.streak, tomorrow.next_points) == (False, 3, 2)
    broken = await checkin.status(clerk, pk(membership), now=noon + timedelta(days=15))
    assert (broken.checked_in_today, broken.streak, broken.next_points) == (False, 0, 2)
    report = await audit_all(pk(brand.id))
    assert report.ok, report.violations


async def test_a_reward_whose_row_was_lost_is_recorded_by_the_retry_and_the_next_day(
    api: Api, world: World, ledger: LedgerWriter
) -> None:
    brand = await new_brand(api, world, "Crash")
    membership, _, _ = await world.enroll(brand)
    clerk = clerk_of(brand)
    day1 = datetime(2026, 11, 10, 4, 0, tzinfo=UTC)
    first = await checkin.check_in(ledger, clerk, pk(membership), now=day1)
    # The process died after the ledger commit, before the row was written:
    await CheckIn.filter(id=first.check_in.id).delete()
    assert [v.check for v in (await audit_all(pk(brand.id))).violations] == ["CHECK_IN_UNRECORDED"]

    retry = await checkin.check_in(ledger, clerk, pk(membership), now=day1)
    assert not retry.created and retry.transaction.id == first.transaction.id and retry.balance == 5
    assert (retry.check_in.day, retry.check_in.streak) == (date(2026, 11, 10), 1)
    assert (await audit_all(pk(brand.id))).ok

    # Lost again; this time the next day's check-in finds yesterday's reward by its claim.
    await CheckIn.filter(membership_id=pk(membership)).delete()
    day2 = await checkin.check_in(ledger, clerk, pk(membership), now=day1 + timedelta(days=1))
    assert day2.created and day2.check_in.streak == 2
    assert await CheckIn.filter(membership_id=pk(membership)).count() == 2
    assert (await audit_all(pk(brand.id))).ok
    assert await world.balance(membership, brand.hq) == 10


async def test_the_audit_catches_a_broken_streak_and_a_row_that_disagrees_with_its_reward(
    api: Api, world: World
) -> None:
    brand = await new_brand(api, world, "Tampered")
    membership, _, token = await world.enroll(brand)
    done = await api.mutate("checkIn", {"membershipId": membership}, token, CHECK_IN)
    row = await CheckIn.get(membership_id=pk(membership))
    await tamper(f"UPDATE check_in SET streak = 4 WHERE id = {row.id}")
    assert [v.check for v in (await audit_all(pk(brand.id))).violations] == ["CHECK_IN_STREAK"]
    await tamper(f"UPDATE check_in SET streak = 1, points = 50 WHERE id = {row.id}")
    assert [v.check for v in (await audit_all(pk(brand.id))).violations] == ["CHECK_IN_MISMATCH"]
    await tamper(f"UPDATE check_in SET points = {done['checkIn']['points']} WHERE id = {row.id}")
    assert (await audit_all(pk(brand.id))).ok


async def test_no_check_in_without_rewards_and_bad_rewards_change_nothing(api: Api, world: World) -> None:
    brand = await make_brand(api, world.platform, "Closed")
    membership, _, token = await world.enroll(brand)
    closed = await api.mutate("checkIn", {"membershipId": membership}, token, CHECK_IN)
    assert closed["userErrors"] == [{"code": "CHECK_IN_CLOSED", "field": "membershipId"}]
    assert (await api.data(STATUS, {"m": membership}, token))["checkInStatus"]["open"] is False

    assert (await program(api, brand, 3, {7: 50}))["userErrors"] == []
    for daily, bonuses, cycle, field in [
        (-1, {}, None, "dailyPoints"),
        (1_000_001, {}, None, "dailyPoints"),
        (1, {0: 5}, None, "streakBonuses"),
        (1, {367: 5}, None, "streakBonuses"),
        (1, {7: 0}, None, "streakBonuses"),
        (1, {7: 5}, 6, "cycleDays"),
        (1, {}, 0, "cycleDays"),
    ]:
        out = await program(api, brand, daily, bonuses, cycle)
        assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": field}], (daily, bonuses, cycle)
    query = "query($b: ID!) { checkInProgram(brandId: $b) { enabled dailyPoints streakBonuses { day points } cycleDays } }"
    kept = (await api.data(query, {"b": brand.id}, token))["checkInProgram"]
    assert kept == {
        "enabled": True,
        "dailyPoints": 3,
        "streakBonuses": [{"day": 7, "points": 50}],
        "cycleDays": None,
    }

    off = await api.mutate(
        "setCheckInProgram",
        {"brandId": brand.id, "dailyPoints": 3, "enabled": False},
        brand.hq,
        "program { enabled }",
    )
    assert off["program"] == {"enabled": False}
    refused = await api.mutate("checkIn", {"membershipId": membership}, token, CHECK_IN)
    assert refused["userErrors"] == [{"code": "CHECK_IN_CLOSED", "field": "membershipId"}]
    assert await LedgerTransaction.filter(membership_id=pk(membership)).count() == 0
    # HQ of another brand cannot touch these rewards.
    foreign = await api.mutate(
        "setCheckInProgram", {"brandId": brand.id, "dailyPoints": 9}, world.b.hq, "program { enabled }"
    )
    assert foreign["userErrors"] == [{"code": "NOT_FOUND", "field": "brandId"}]

"""Engagement events: HQ defines them, a store or HQ reports them with an idempotency key, and the limit
per member holds under concurrency, per brand-local period."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from hub.auth import Principal
from hub.domain import LimitPeriod, Role
from hub.errors import DomainError
from hub.ledger.engine import LedgerWriter
from hub.models import EngagementEventReward, LedgerCounter, LedgerTransaction, TransactionKind
from hub.resolvers import rewards
from hub.resolvers.audit import audit_all
from tests.helpers import Api, Brand, World, make_brand, make_world, pk, tamper

EVENT = "event { id code name points limitPerMember limitPeriod active }"
REPORT = "event { code } period points balance transaction { kind reason }"


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def define(api: Api, brand: Brand, code: str, points: int = 50, **limits: Any) -> dict:
    input = {"brandId": brand.id, "code": code, "name": f"Did {code}", "points": points, **limits}
    return await api.mutate("createEngagementEvent", input, brand.hq, EVENT)


async def report(api: Api, token: str, membership: str, code: str, key: str) -> dict:
    input = {"membershipId": membership, "eventCode": code, "idempotencyKey": key}
    return await api.mutate("reportEngagementEvent", input, token, REPORT)


async def test_hq_defines_an_event_and_a_store_reports_it_once(api: Api, world: World) -> None:
    brand = await make_brand(api, world.platform, "Events")
    created = await define(api, brand, "survey_2026", 50)
    assert created["userErrors"] == []
    assert created["event"] | {"id": None} == {
        "id": None,
        "code": "survey_2026",
        "name": "Did survey_2026",
        "points": 50,
        "limitPerMember": 1,
        "limitPeriod": "TOTAL",
        "active": True,
    }
    membership, _, token = await world.enroll(brand)
    other, _, _ = await world.enroll(brand)

    first = await report(api, brand.store, membership, "survey_2026", "rcpt-1")
    assert first["userErrors"] == []
    assert (first["points"], first["balance"], first["period"]) == (50, 50, "all")
    assert first["transaction"] == {"kind": "EVENT_REWARD", "reason": "Did survey_2026"}
    # The same report again (a retry): the same reward, nothing more.
    assert await report(api, brand.store, membership, "survey_2026", "rcpt-1") == first
    # The same key for another member is another request; a new key is over the limit.
    conflict = await report(api, brand.store, other, "survey_2026", "rcpt-1")
    assert conflict["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    over = await report(api, brand.hq, membership, "survey_2026", "hq-1")
    assert over["userErrors"] == [{"code": "LIMIT_REACHED", "field": "eventCode"}]
    assert await world.balance(membership, brand.hq) == 50 and await world.balance(other, brand.hq) == 0
    assert (
        await LedgerTransaction.filter(kind=TransactionKind.EVENT_REWARD, brand_id=pk(brand.id)).count() == 1
    )

    # A member sees its brand's events; another brand's HQ does not.
    listing = "query($b: ID!) { engagementEvents(brandId: $b) { edges { node { code points } } } }"
    events = (await api.data(listing, {"b": brand.id}, token))["engagementEvents"]["edges"]
    assert [e["node"] for e in events] == [{"code": "survey_2026", "points": 50}]
    body = await api.gql(listing, {"b": brand.id}, world.b.hq)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    node = "query($id: ID!) { node(id: $id) { ... on EngagementEvent { code } } }"
    assert (await api.data(node, {"id": created["event"]["id"]}, token))["node"] == {"code": "survey_2026"}
    assert (await api.data(node, {"id": created["event"]["id"]}, world.b.hq))["node"] is None
    assert (await world.audit(brand))["ok"]


async def test_bad_definitions_and_reports_write_nothing(api: Api, world: World) -> None:
    brand = await make_brand(api, world.platform, "BadEvents")
    assert (await define(api, brand, "profile", 10))["userErrors"] == []
    for code, points, limits, error in [
        ("profile", 10, {}, ("ALREADY_EXISTS", "code")),
        ("has space", 10, {}, ("INVALID_INPUT", "code")),
        ("x" * 33, 10, {}, ("INVALID_INPUT", "code")),
        ("ok", 0, {}, ("INVALID_INPUT", "points")),
        ("ok", 1_000_001, {}, ("INVALID_INPUT", "points")),
        ("ok", 10, {"limitPerMember": 0}, ("INVALID_INPUT", "limitPerMember")),
    ]:
        out = await define(api, brand, code, points, **limits)
        assert out["userErrors"] == [{"code": error[0], "field": error[1]}], code
    membership, _, token = await world.enroll(brand)
    for token_, code, error in [
        (brand.store, "nope", ("NOT_FOUND", "eventCode")),
        (world.b.store, "profile", ("NOT_FOUND", "membershipId")),  # another brand's till
        (token, "profile", ("PERMISSION_DENIED", None)),  # a member cannot report for itself
    ]:
        out = await report(api, token_, membership, code, "k-1")
        assert out["userErrors"] == [{"code": error[0], "field": error[1]}], code
    # Turned off: not rewarded any more, and HQ of another brand cannot turn it back on.
    event_id = (await api.data("query($b: ID!) { engagementEvents(brandId: $b) { edges { node { id } } } }",
                               {"b": brand.id}, brand.hq))["engagementEvents"]["edges"][0]["node"]["id"]  # fmt: skip
    off = await api.mutate("updateEngagementEvent", {"id": event_id, "active": False}, brand.hq, EVENT)
    assert off["event"]["active"] is False
    refused = await report(api, brand.store, membership, "profile", "k-2")
    assert refused["userErrors"] == [{"code": "EVENT_INACTIVE", "field": "eventCode"}]
    foreign = await api.mutate("updateEngagementEvent", {"id": event_id, "active": True}, world.b.hq, EVENT)
    assert foreign["userErrors"] == [{"code": "NOT_FOUND", "field": "id"}]
    assert await LedgerTransaction.filter(membership_id=pk(membership)).count() == 0


async def test_twenty_concurrent_reports_reward_exactly_the_limit(api: Api, world: World) -> None:
    brand = await make_brand(api, world.platform, "Race")
    assert (await define(api, brand, "share", 7, limitPerMember=3, limitPeriod="DAY"))["userErrors"] == []
    membership, _, _ = await world.enroll(brand)
    tills = [brand.store, brand.store2, brand.hq]
    results = await asyncio.gather(
        *(report(api, tills[i % 3], membership, "share", f"share-{i}") for i in range(20))
    )
    won = [r for r in results if not r["userErrors"]]
    lost = [r for r in results if r["userErrors"]]
    assert len(won) == 3 and sorted(r["balance"] for r in won) == [7, 14, 21]
    assert {e["code"] for r in lost for e in r["userErrors"]} == {"LIMIT_REACHED"}
    assert await world.balance(membership, brand.hq) == 21
    rows = await EngagementEventReward.filter(membership_id=pk(membership))
    assert len(rows) == 3 and len({r.guard_key for r in rows}) == 1
    assert (await LedgerCounter.get(key=rows[0].guard_key)).value == 3
    assert (await world.audit(brand))["ok"]


@pytest.mark.parametrize(
    ("period", "day", "key"),
    [
        (LimitPeriod.TOTAL, date(2026, 11, 5), "all"),
        (LimitPeriod.DAY, date(2026, 11, 5), "2026-11-05"),
        (LimitPeriod.WEEK, date(2026, 11, 8), "2026-W45"),  # a Sunday
        (LimitPeriod.WEEK, date(2026, 11, 9), "2026-W46"),  # the Monday after
        (LimitPeriod.WEEK, date(2025, 12, 29), "2026-W01"),  # ISO week 1 of 2026 starts in 2025
        (LimitPeriod.MONTH, date(2026, 2, 28), "2026-02"),
        (LimitPeriod.YEAR, date(2026, 12, 31), "2026"),
    ],
)
def test_period_keys(period: LimitPeriod, day: date, key: str) -> None:
    assert rewards.period_key(period, day) == key


async def test_a_periodic_limit_starts_again_at_the_brands_next_period(
    api: Api, world: World, ledger: LedgerWriter
) -> None:
    brand = await make_brand(api, world.platform, "Monthly")
    assert (await define(api, brand, "review", 5, limitPerMember=1, limitPeriod="MONTH"))["userErrors"] == []
    membership, _, _ = await world.enroll(brand)
    clerk = Principal(Role.STORE, brand_id=pk(brand.id), store_id=pk(brand.store_id))
    # 30 November 23:00 in Shanghai, then 00:30 on 1 December there (still 30 November in UTC).
    late_november = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    first = await rewards.report_event(ledger, clerk, pk(membership), "review", "m-1", now=late_november)
    assert first.reward.period == "2026-11"
    with pytest.raises(DomainError) as refused:
        await rewards.report_event(ledger, clerk, pk(membership), "review", "m-2", now=late_november)
    assert refused.value.code == "LIMIT_REACHED"
    december = late_november + timedelta(hours=1, minutes=30)
    second = await rewards.report_event(ledger, clerk, pk(membership), "review", "m-3", now=december)
    assert second.reward.period == "2026-12" and second.balance == 10
    # A retry of the first report in December still answers the November reward.
    retry = await rewards.report_event(ledger, clerk, pk(membership), "review", "m-1", now=december)
    assert (
        retry.replayed and retry.transaction.id == first.transaction.id and retry.reward.period == "2026-11"
    )
    report_ = await audit_all(pk(brand.id))
    assert report_.ok, report_.violations


async def test_changes_apply_to_later_reports(api: Api, world: World) -> None:
    brand = await make_brand(api, world.platform, "Changes")
    event = (await define(api, brand, "app", 5, limitPerMember=2))["event"]
    membership, _, _ = await world.enroll(brand)
    assert (await report(api, brand.store, membership, "app", "a-1"))["points"] == 5
    changed = await api.mutate(
        "updateEngagementEvent", {"id": event["id"], "points": 8, "limitPerMember": 1}, brand.hq, EVENT
    )
    assert (changed["event"]["points"], changed["event"]["limitPerMember"]) == (8, 1)
    over = await report(api, brand.store, membership, "app", "a-2")  # one given already, the limit is now one
    assert over["userErrors"] == [{"code": "LIMIT_REACHED", "field": "eventCode"}]
    more = await api.mutate(
        "updateEngagementEvent", {"id": event["id"], "limitPerMember": 3}, brand.hq, EVENT
    )
    assert more["userErrors"] == []
    assert (await report(api, brand.store, membership, "app", "a-3"))["points"] == 8
    assert await world.balance(membership, brand.hq) == 13
    assert (await world.audit(brand))["ok"]


async def test_the_audit_catches_a_counter_that_disagrees_with_the_rewards(api: Api, world: World) -> None:
    brand = await make_brand(api, world.platform, "Counted")
    assert (await define(api, brand, "quiz", 5, limitPerMember=5))["userErrors"] == []
    membership, _, _ = await world.enroll(brand)
    assert (await report(api, brand.store, membership, "quiz", "q-1"))["userErrors"] == []
    row = await EngagementEventReward.get(membership_id=pk(membership))
    await tamper(f"UPDATE ledger_counter SET value = 2 WHERE key = '{row.guard_key}'")
    assert [v.check for v in (await audit_all(pk(brand.id))).violations] == ["EVENT_LIMIT_COUNT"]
    await tamper(f"UPDATE ledger_counter SET value = 1 WHERE key = '{row.guard_key}'")
    await tamper(f"UPDATE engagement_event_reward SET points = 6 WHERE id = {row.id}")
    assert [v.check for v in (await audit_all(pk(brand.id))).violations] == ["EVENT_REWARD_MISMATCH"]
    await tamper(f"UPDATE engagement_event_reward SET points = 5 WHERE id = {row.id}")
    assert (await audit_all(pk(brand.id))).ok

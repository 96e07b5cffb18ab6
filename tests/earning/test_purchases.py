"""Recording purchases under rules, through GraphQL: breakdown, preview, versions, replay, bad input,
limits under concurrency, the per-process rule book, and member activity."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from tortoise import connections

from hub.models import LedgerCounter, LedgerTransaction, Membership, Purchase
from hub.resolvers import earning
from tests.earning.support import (
    BREAKDOWN,
    create_rule,
    issued_points,
    key,
    preview,
    purchase,
    total,
)
from tests.helpers import Api, World, make_world, pk

LINES = [
    {"amountFen": 5_000, "category": "fresh"},
    {"amountFen": 3_000, "category": "tobacco"},
    {"amountFen": 2_000, "category": "grocery", "marginClass": "house"},
]


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    """Brand A carries the rules of this module: fresh 2 per ¥1, tobacco none, house brands x3."""
    world = await make_world(api)
    await create_rule(
        api, world.a, "CATEGORY_RATE", {"categories": ["fresh"], "ratePoints": 2, "rateUnitFen": 100}
    )
    await create_rule(
        api,
        world.a,
        "CATEGORY_RATE",
        {"categories": ["tobacco"], "ratePoints": 0, "rateUnitFen": 100, "stop": True},
    )
    await create_rule(
        api,
        world.a,
        "MULTIPLIER",
        {"marginClasses": ["house"], "multiplierNumerator": 3, "multiplierDenominator": 1},
    )
    return world


async def test_a_purchase_earns_by_its_lines_and_says_why(world: World) -> None:
    membership, _, _ = await world.enroll()
    out = await purchase(world, membership, 10_000, LINES)
    assert out["userErrors"] == []
    # fresh 50 x 2 = 100; tobacco 0; house 20 x 3 = 60
    assert (out["points"], out["pendingPoints"], out["balance"]) == (160, 0, 160)
    assert [(e["kind"], e["points"]) for e in out["breakdown"]] == [
        ("BASE_RATE", 20),
        ("CATEGORY_RATE", 100),
        ("CATEGORY_RATE", 0),
        ("MULTIPLIER", 40),
    ]
    # The breakdown adds up to the points posted, on the transaction too, and in history.
    assert total(out["breakdown"]) == await issued_points(out["transaction"]["id"]) == 160
    query = f"""query($id: ID!) {{ node(id: $id) {{ ... on Membership {{
        history(first: 1) {{ edges {{ node {{ delta transaction {{ {BREAKDOWN} }} }} }} }} }} }} }}"""
    data = await world.api.data(query, {"id": membership}, world.a.hq)
    entry = data["node"]["history"]["edges"][0]["node"]
    assert entry["delta"] == 160 and entry["transaction"]["breakdown"] == out["breakdown"]
    assert (await world.audit())["ok"]


async def test_preview_equals_the_real_earn(world: World) -> None:
    membership, _, _ = await world.enroll()
    for amount, lines in ((12_345, None), (10_000, LINES), (7_000, LINES)):  # the last is paid in part
        seen = await preview(world, membership, amount, lines)
        hq_seen = await preview(world, membership, amount, lines, token=world.a.hq)
        out = await purchase(world, membership, amount, lines)
        assert seen == hq_seen
        assert (seen["points"], seen["breakdown"]) == (out["points"], out["breakdown"])
    assert await LedgerTransaction.filter(membership_id=pk(membership)).count() == 3  # previews wrote nothing


async def test_a_purchase_at_a_past_time_is_judged_by_the_versions_then(api: Api) -> None:
    world = await make_world(api)
    membership, _, _ = await world.enroll()
    created = await create_rule(
        api, world.a, "MULTIPLIER", {"multiplierNumerator": 2, "multiplierDenominator": 1}
    )
    between = datetime.now(UTC).isoformat()
    update = {
        "ruleId": created["rule"]["id"],
        "rule": {"name": "triple", "multiplierNumerator": 3, "multiplierDenominator": 1},
    }
    changed = await api.mutate("updateEarnRule", update, world.a.hq, "version { version }")
    assert changed["userErrors"] == [] and changed["version"]["version"] == 2

    late = await purchase(world, membership, 10_000, purchased_at=between)  # a till uploading late
    now = await purchase(world, membership, 10_000)

    assert [(e["version"], e["points"]) for e in late["breakdown"]] == [(None, 100), (1, 100)]
    assert [(e["version"], e["points"]) for e in now["breakdown"]] == [(None, 100), (2, 200)]
    # A version that takes effect later does not apply before it does, and retiring works the same way.
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = {**update, "rule": {"name": "x10", "multiplierNumerator": 10, "multiplierDenominator": 1}}
    assert (await api.mutate("updateEarnRule", {**later, "effectiveFrom": soon}, world.a.hq, "rule { id }"))[
        "userErrors"
    ] == []
    assert (await purchase(world, membership, 10_000))["points"] == 300
    future = await preview(world, membership, 10_000, at=(datetime.now(UTC) + timedelta(hours=2)).isoformat())
    assert future["points"] == 1_000
    retire = {"ruleId": created["rule"]["id"]}
    assert (await api.mutate("retireEarnRule", retire, world.a.hq, "version { active }"))["version"] == {
        "active": False
    }
    assert (await purchase(world, membership, 10_000))["points"] == 100
    query = "query($b: ID!) { earnRules(brandId: $b) { edges { node { kind inForce { version } latest { version active } versions(first: 10) { edges { node { version } } } } } } }"
    rules = (await api.data(query, {"b": world.a.id}, world.a.store))["earnRules"]["edges"]
    assert rules[0]["node"]["inForce"] is None and rules[0]["node"]["latest"] == {
        "version": 4,
        "active": False,
    }
    assert [e["node"]["version"] for e in rules[0]["node"]["versions"]["edges"]] == [4, 3, 2, 1]
    assert (await world.audit())["ok"]


async def test_replay_and_conflict_with_lines(world: World) -> None:
    membership, _, _ = await world.enroll()
    k = key()
    first = await purchase(world, membership, 10_000, LINES, idempotency_key=k)
    again = await purchase(world, membership, 10_000, LINES, idempotency_key=k)
    assert again == first
    other_lines = [{**LINES[0], "category": "grocery"}, *LINES[1:]]
    conflict = await purchase(world, membership, 10_000, other_lines, idempotency_key=k)
    assert conflict["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    assert await Purchase.filter(membership_id=pk(membership)).count() == 1
    assert (await Membership.get(id=pk(membership))).lifetime_spend_fen == 10_000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amountFen": 10_000, "lines": [{"amountFen": 9_999}]}, "lines"),
        ({"amountFen": 100, "lines": [{"amountFen": 0}]}, "lines.amountFen"),
        ({"amountFen": 100, "lines": [{"amountFen": 100, "category": "bad;drop"}]}, "lines.category"),
        ({"amountFen": 100, "lines": [{"amountFen": 1}] * 201}, "lines"),
        ({"amountFen": 100, "purchasedAt": "2099-01-01T00:00:00+08:00"}, "purchasedAt"),
        ({"amountFen": 100, "purchasedAt": "2020-01-01T00:00:00+08:00"}, "purchasedAt"),
        ({"amountFen": 100, "purchasedAt": "2026-01-01T00:00:00"}, "purchasedAt"),
        ({"amountFen": 0}, "amountFen"),
    ],
)
async def test_bad_purchases_write_nothing(world: World, body: dict, field: str) -> None:
    membership, _, _ = await world.enroll()
    before = await LedgerTransaction.all().count()
    out = await world.api.mutate(
        "recordPurchase",
        {"membershipId": membership, "idempotencyKey": key(), **body},
        world.a.store,
        "points",
    )
    assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": field}]
    assert await LedgerTransaction.all().count() == before
    assert await Purchase.filter(membership_id=pk(membership)).count() == 0


@pytest.mark.parametrize(
    ("kind", "rule", "field"),
    [
        ("MULTIPLIER", {"multiplierNumerator": 2}, "rule.multiplierDenominator"),
        ("DAILY_CAP", {"points": 10, "categories": ["x"]}, "rule.categories"),
        (
            "BASE_RATE",
            {"ratePoints": 1, "rateUnitFen": 100, "storeIds": ["U3RvcmU6OTk5OTk5OQ=="]},
            "rule.storeIds",
        ),
    ],
)
async def test_bad_rules_write_nothing(world: World, kind: str, rule: dict, field: str) -> None:
    from hub.models import EarnRule

    before = await EarnRule.all().count()
    body = {"brandId": world.a.id, "kind": kind, "rule": {"name": "bad", **rule}}
    out = await world.api.mutate("createEarnRule", body, world.a.hq, "rule { id }")
    assert out["userErrors"][0]["field"] == field
    assert await EarnRule.all().count() == before
    past = {
        "brandId": world.a.id,
        "kind": "DAILY_CAP",
        "rule": {"name": "x", "points": 5},
        "effectiveFrom": "2020-01-01T00:00:00Z",
    }
    assert (await world.api.mutate("createEarnRule", past, world.a.hq, "rule { id }"))["userErrors"] == [
        {"code": "INVALID_INPUT", "field": "effectiveFrom"}
    ]


async def test_the_daily_cap_holds_under_concurrent_purchases(api: Api) -> None:
    world = await make_world(api)
    await create_rule(api, world.a, "DAILY_CAP", {"points": 1_000})
    membership, _, _ = await world.enroll()
    outs = await asyncio.gather(*(purchase(world, membership, 15_000) for _ in range(20)))  # 150 each
    assert all(o["userErrors"] == [] for o in outs)
    assert sum(o["points"] for o in outs) == 1_000
    assert all(total(o["breakdown"]) == o["points"] for o in outs)
    assert await world.balance(membership) == 1_000
    counter = await LedgerCounter.get(key__startswith=f"earn:day:m{pk(membership)}:")
    assert counter.value == 1_000
    assert (await world.audit())["ok"]


async def test_one_first_purchase_bonus_among_concurrent_first_purchases(api: Api) -> None:
    world = await make_world(api)
    await create_rule(api, world.a, "FIRST_PURCHASE_BONUS", {"points": 500})
    membership, _, _ = await world.enroll()
    outs = await asyncio.gather(*(purchase(world, membership, 1_000) for _ in range(10)))
    bonuses = [e for o in outs for e in o["breakdown"] if e["kind"] == "FIRST_PURCHASE_BONUS"]
    assert len(bonuses) == 1
    assert await world.balance(membership) == 10 * 10 + 500
    # A later purchase, and a refund and re-buy, never get it again (the counter stays taken).
    assert (await purchase(world, membership, 1_000))["points"] == 10
    assert (await world.audit())["ok"]


async def test_a_birthday_bonus_once_a_year(api: Api) -> None:
    world = await make_world(api)
    await create_rule(api, world.a, "BIRTHDAY_BONUS", {"points": 88, "birthday": "MONTH"})
    membership, _, token = await world.enroll()
    this_month = datetime.now(ZoneInfo("Asia/Shanghai")).date().replace(day=1, year=1990)  # brand-local
    set_ = await world.api.mutate(
        "setBirthday",
        {"membershipId": membership, "birthday": this_month.isoformat()},
        token,
        "membership { birthday }",
    )
    assert set_["userErrors"] == [] and set_["membership"]["birthday"] == this_month.isoformat()
    moved = await world.api.mutate(
        "setBirthday", {"membershipId": membership, "birthday": "1991-01-01"}, token, "membership { id }"
    )
    assert moved["userErrors"] == [{"code": "ALREADY_EXISTS", "field": "birthday"}]
    outs = await asyncio.gather(*(purchase(world, membership, 1_000) for _ in range(5)))
    assert sum(e["kind"] == "BIRTHDAY_BONUS" for o in outs for e in o["breakdown"]) == 1
    assert await world.balance(membership) == 5 * 10 + 88
    assert (await world.audit())["ok"]


async def test_rule_books_are_compiled_once_per_version_and_follow_changes_from_any_process(api: Api) -> None:
    world = await make_world(api)
    membership, _, _ = await world.enroll()
    await create_rule(api, world.a, "MULTIPLIER", {"multiplierNumerator": 2, "multiplierDenominator": 1})
    await purchase(world, membership, 1_000)
    loads = earning.BOOKS.loads
    for _ in range(5):
        assert (await purchase(world, membership, 1_000))["points"] == 20
    assert earning.BOOKS.loads == loads  # no reload while the version is unchanged
    # Another process changes the rule: a version row and the brand's counter, committed together.
    conn = connections.get("default")
    brand = pk(world.a.id)
    await conn.execute_script(
        'UPDATE earn_rule_version SET spec = \'{"multiplier":[5,1],"group":"default"}\''
        f" WHERE brand_id = {brand}; UPDATE brand SET rules_version = rules_version + 1 WHERE id = {brand}"
    )
    assert (await purchase(world, membership, 1_000))["points"] == 50
    assert earning.BOOKS.loads == loads + 1


async def test_member_activity_moves_forward_only(world: World) -> None:
    membership, _, _ = await world.enroll()
    now = datetime.now(UTC)
    await purchase(world, membership, 1_000, store_key=world.a.store2)
    await purchase(
        world, membership, 2_000, purchased_at=(now - timedelta(days=2)).isoformat()
    )  # late, at S1
    query = "query($id: ID!) { node(id: $id) { ... on Membership { lastPurchaseAt lastPurchaseStore { code } lifetimeSpendFen } } }"
    node = (await world.api.data(query, {"id": membership}, world.a.hq))["node"]
    assert node["lastPurchaseStore"] == {"code": "S2"} and node["lifetimeSpendFen"] == 3_000
    assert datetime.fromisoformat(node["lastPurchaseAt"]) >= now

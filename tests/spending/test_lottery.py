"""Lottery: configuration, plays (cost and prize in one transaction), quantities, budget and daily
limits exact under concurrency, the odds checked statistically."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from typing import Any

import pytest

from hub.models import LedgerTransaction, Lottery, LotteryPlay, LotteryPrize
from hub.resolvers import lottery as service
from tests.helpers import Api, World, make_world, pk, tamper
from tests.spending.support import assert_audit_clean, coupons, key, template

LOTTERY = "lottery { id code costPoints playsPerDay budgetPoints budgetUsed prizes { name kind weight awarded } } created"
PLAY = (
    "play { id costPoints pointsWon prize { name kind } drawnPrize { name } coupon { id status }"
    " giftOrder { id status points } } transaction { id kind } pointsBalance"
)


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def lottery(world: World, prizes: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    input = {
        "brandId": world.a.id,
        "code": key("draw"),
        "name": "Lucky draw",
        "costPoints": 10,
        "prizes": prizes,
        **fields,
    }
    out = await world.api.mutate("createLottery", input, world.a.hq, LOTTERY)
    assert out["userErrors"] == [], out
    return dict(out["lottery"])


async def play(
    world: World, lottery_id: str, membership: str, token: str, k: str | None = None
) -> dict[str, Any]:
    input = {"lotteryId": lottery_id, "membershipId": membership, "idempotencyKey": k or key("play")}
    return await world.api.mutate("playLottery", input, token, PLAY)


async def member(world: World, points: int) -> tuple[str, str]:
    membership, _, token = await world.enroll()
    if points:
        await world.earn(membership, points * 100, key("earn"))
    return membership, token


POINTS_50 = {"name": "50 points", "kind": "POINTS", "weight": 1, "points": 50}
NOTHING = {"name": "Better luck", "kind": "NOTHING", "weight": 1}


async def test_hq_configures_a_lottery_and_bad_prizes_write_nothing(world: World) -> None:
    t = await template(world)
    input = {
        "brandId": world.a.id,
        "code": key("draw"),
        "name": "Lucky draw",
        "costPoints": 100,
        "playsPerDay": 3,
        "budgetPoints": 10_000,
        "prizes": [
            POINTS_50,
            {"name": "¥10 off", "kind": "COUPON", "weight": 2, "couponTemplateId": t["id"], "quantity": 100},
            {**NOTHING, "weight": 7},
        ],
    }
    made = await world.api.mutate("createLottery", input, world.a.hq, LOTTERY)
    assert made["userErrors"] == [] and made["created"] is True
    assert [(p["kind"], p["weight"], p["awarded"]) for p in made["lottery"]["prizes"]] == [
        ("POINTS", 1, 0),
        ("COUPON", 2, 0),
        ("NOTHING", 7, 0),
    ]
    again = await world.api.mutate("createLottery", input, world.a.hq, LOTTERY)
    assert again["created"] is False and again["lottery"]["id"] == made["lottery"]["id"]
    other_odds = {**input, "prizes": [POINTS_50, {**NOTHING, "weight": 9}]}
    taken = await world.api.mutate("createLottery", other_odds, world.a.hq, LOTTERY)
    assert taken["userErrors"] == [{"code": "ALREADY_EXISTS", "field": "code"}]
    foreign = await template(world, world.b)
    before = (await Lottery.all().count(), await LotteryPrize.all().count())
    for bad, code, field in (
        ({"costPoints": 0}, "INVALID_INPUT", "costPoints"),
        ({"playsPerDay": 0}, "INVALID_INPUT", "playsPerDay"),
        ({"budgetPoints": -1}, "INVALID_INPUT", "budgetPoints"),
        ({"prizes": []}, "INVALID_INPUT", "prizes"),
        ({"prizes": [{**NOTHING, "weight": 0}]}, "INVALID_INPUT", "prizes.0.weight"),
        ({"prizes": [NOTHING, {**POINTS_50, "points": 0}]}, "INVALID_INPUT", "prizes.1.points"),
        ({"prizes": [{**NOTHING, "points": 5}]}, "INVALID_INPUT", "prizes.0.kind"),
        (
            {"prizes": [{"name": "C", "kind": "COUPON", "weight": 1}]},
            "INVALID_INPUT",
            "prizes.0.couponTemplateId",
        ),
        (
            {"prizes": [{"name": "C", "kind": "COUPON", "weight": 1, "couponTemplateId": foreign["id"]}]},
            "NOT_FOUND",
            "prizes.0.couponTemplateId",
        ),
        ({"brandId": world.b.id}, "NOT_FOUND", "brandId"),
        ({"code": "No Code"}, "INVALID_INPUT", "code"),
    ):
        out = await world.api.mutate(
            "createLottery", {**input, "code": key("bad"), **bad}, world.a.hq, LOTTERY
        )
        assert out["userErrors"] == [{"code": code, "field": field}], bad
    assert (await Lottery.all().count(), await LotteryPrize.all().count()) == before


async def test_a_play_pays_its_cost_and_its_prize_in_one_transaction_once(world: World) -> None:
    draw = await lottery(world, [POINTS_50])
    membership, token = await member(world, 100)
    k = key("play")
    won = await play(world, draw["id"], membership, token, k)
    assert won["userErrors"] == [] and won["transaction"]["kind"] == "LOTTERY_PLAY"
    assert won["play"]["prize"] == {"name": "50 points", "kind": "POINTS"} and won["play"]["pointsWon"] == 50
    assert won["pointsBalance"] == 140
    # A retry answers the first outcome (no second draw); the key for another lottery is refused.
    assert await play(world, draw["id"], membership, token, k) == won
    other = await lottery(world, [NOTHING])
    conflict = await play(world, other["id"], membership, token, k)
    assert conflict["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    assert await world.balance(membership) == 140
    # The member sees its plays; a store of the brand can play for it.
    by_store = await play(world, other["id"], membership, world.a.store)
    assert by_store["play"]["prize"] is None and by_store["pointsBalance"] == 130
    query = "query($id: ID!) { node(id: $id) { ... on Membership { lotteryPlays { edges { node { id pointsWon } } } } } }"
    plays = (await world.api.data(query, {"id": membership}, token))["node"]["lotteryPlays"]["edges"]
    assert [e["node"]["id"] for e in plays] == [by_store["play"]["id"], won["play"]["id"]]
    await assert_audit_clean(world)


async def test_coupon_and_gift_prizes_are_issued_in_the_play(world: World) -> None:
    t = await template(world, validDays=7)
    gift = await world.api.mutate(
        "createGiftItem",
        {"brandId": world.a.id, "code": key("g"), "name": "Mug", "pointsPrice": 300, "stock": 5},
        world.a.hq,
        "item { id }",
    )
    coupon_draw = await lottery(
        world, [{"name": "Coupon", "kind": "COUPON", "weight": 1, "couponTemplateId": t["id"]}]
    )
    gift_draw = await lottery(
        world,
        [{"name": "Mug", "kind": "GIFT", "weight": 1, "giftItemId": gift["item"]["id"]}],
        budgetPoints=300,
    )
    membership, token = await member(world, 100)
    won = await play(world, coupon_draw["id"], membership, token)
    assert won["userErrors"] == [] and won["play"]["coupon"]["status"] == "AVAILABLE"
    assert [c["id"] for c in await coupons(world, membership, token)] == [won["play"]["coupon"]["id"]]
    mug = await play(world, gift_draw["id"], membership, token)
    assert mug["userErrors"] == [] and mug["play"]["giftOrder"]["status"] == "PLACED"
    assert mug["play"]["giftOrder"]["points"] == 0 and mug["pointsBalance"] == 80
    # The budget (300: one mug) is spent: the next play wins nothing and says what was drawn.
    none = await play(world, gift_draw["id"], membership, token)
    assert none["play"]["prize"] is None and none["play"]["drawnPrize"] == {"name": "Mug"}
    assert none["play"]["giftOrder"] is None and none["pointsBalance"] == 70
    # A prize order cancelled gives its stock back and no points (it cost none).
    cancel = "cancelGiftOrder"
    out = await world.api.mutate(
        cancel, {"orderId": mug["play"]["giftOrder"]["id"]}, token, "order { status } pointsBalance"
    )
    assert out["userErrors"] == [] and out["order"]["status"] == "CANCELLED" and out["pointsBalance"] == 70
    stock = "query($id: ID!) { node(id: $id) { ... on GiftItem { ordered } } }"
    assert (await world.api.data(stock, {"id": gift["item"]["id"]}, world.a.hq))["node"]["ordered"] == 0
    await assert_audit_clean(world)


async def test_quantity_budget_and_daily_limit_hold_under_concurrent_plays(world: World) -> None:
    # Quantity 3 of a sure prize, twelve members at once: three win, nine pay and win nothing.
    draw = await lottery(world, [{**POINTS_50, "quantity": 3}])
    players = [await member(world, 20) for _ in range(12)]
    results = await asyncio.gather(*(play(world, draw["id"], m, t) for m, t in players))
    assert all(r["userErrors"] == [] for r in results)
    assert sorted(r["play"]["pointsWon"] for r in results) == [0] * 9 + [50] * 3
    assert {r["play"]["drawnPrize"]["name"] for r in results} == {"50 points"}
    # A budget of 100 points: two prizes of 50, whatever the quantities.
    budget = await lottery(world, [POINTS_50], budgetPoints=100)
    results = await asyncio.gather(*(play(world, budget["id"], m, t) for m, t in players))
    assert sorted(r["play"]["pointsWon"] for r in results) == [0] * 10 + [50] * 2
    data = await world.api.data(
        "query($id: ID!) { node(id: $id) { ... on Lottery { budgetUsed prizes { awarded } } } }",
        {"id": budget["id"]},
        world.a.hq,
    )
    assert data["node"] == {"budgetUsed": 100, "prizes": [{"awarded": 2}]}
    # Two plays a day: six at once by one member, two are played.
    daily = await lottery(world, [NOTHING], playsPerDay=2)
    membership, token = await member(world, 100)
    results = await asyncio.gather(*(play(world, daily["id"], membership, token) for _ in range(6)))
    codes = sorted(r["userErrors"][0]["code"] if r["userErrors"] else "OK" for r in results)
    assert codes == ["LIMIT_REACHED"] * 4 + ["OK"] * 2
    assert await world.balance(membership) == 80
    await assert_audit_clean(world)


async def test_bad_plays_write_nothing(world: World) -> None:
    draw = await lottery(world, [POINTS_50], costPoints=500)
    membership, token = await member(world, 100)
    closed = await lottery(world, [NOTHING])
    await world.api.mutate("updateLottery", {"lotteryId": closed["id"], "active": False}, world.a.hq, LOTTERY)
    foreign = await world.api.mutate(
        "createLottery",
        {"brandId": world.b.id, "code": key("b"), "name": "B", "costPoints": 1, "prizes": [NOTHING]},
        world.b.hq,
        "lottery { id }",
    )
    before = (await LedgerTransaction.all().count(), await LotteryPlay.all().count())
    for lottery_id, want in (
        (draw["id"], ("INSUFFICIENT_POINTS", "points")),
        (closed["id"], ("NOT_AVAILABLE", "lotteryId")),
        (foreign["lottery"]["id"], ("NOT_FOUND", "lotteryId")),
    ):
        out = await play(world, lottery_id, membership, token)
        assert out["userErrors"] == [{"code": want[0], "field": want[1]}]
    _, _, other = await world.enroll()
    out = await play(world, draw["id"], membership, other)
    assert out["userErrors"] == [{"code": "NOT_FOUND", "field": "membershipId"}]
    assert (await LedgerTransaction.all().count(), await LotteryPlay.all().count()) == before
    assert await world.balance(membership) == 100


def test_the_draw_follows_the_weights_exactly() -> None:
    prizes = [LotteryPrize(id=i, weight=w) for i, w in enumerate([1, 2, 3, 4])]
    # Each ticket of [0, 10) maps to the prize whose weight band holds it.
    assert [service.draw(prizes, lambda total, t=t: t).id for t in range(10)] == [
        0,
        1,
        1,
        2,
        2,
        2,
        3,
        3,
        3,
        3,
    ]


# Chi-squared critical values at p = 0.001 (a correct draw fails this test once in a thousand runs).
CRITICAL_P001 = {3: 16.266, 4: 18.467}


def chi_squared(observed: Counter[int], weights: list[int], n: int) -> float:
    total = sum(weights)
    return sum((observed[i] - n * w / total) ** 2 / (n * w / total) for i, w in enumerate(weights))


def test_the_odds_hold_over_many_draws() -> None:
    weights = [1, 2, 3, 4, 10]
    prizes = [LotteryPrize(id=i, weight=w) for i, w in enumerate(weights)]
    n = 50_000
    observed = Counter(service.draw(prizes, secrets.randbelow).id for _ in range(n))
    assert chi_squared(observed, weights, n) < CRITICAL_P001[len(weights) - 1]
    # The statistic does see skewed odds: the same counts against other weights fail.
    assert chi_squared(observed, [1, 1, 1, 1, 1], n) > CRITICAL_P001[4]


async def test_recorded_plays_follow_the_odds(world: World) -> None:
    """Plays through the ledger record outcomes in the configured proportions (weights 1:3)."""
    draw = await lottery(world, [{**POINTS_50, "points": 1}, {**NOTHING, "weight": 3}], costPoints=1)
    membership, token = await member(world, 1_000)
    n = 400
    for _ in range(n // 50):
        results = await asyncio.gather(*(play(world, draw["id"], membership, token) for _i in range(50)))
        assert all(r["userErrors"] == [] for r in results)
    rows = await LotteryPlay.filter(lottery_id=pk(draw["id"]))
    assert len(rows) == n
    won = sum(1 for r in rows if r.prize_id is not None)
    observed = Counter({0: won, 1: n - won})
    # df = 1: the critical value at p = 0.001 is 10.828.
    assert chi_squared(observed, [1, 3], n) < 10.828
    assert await world.balance(membership) == 1_000 - n + won
    await assert_audit_clean(world)


async def test_the_audit_sees_counters_that_disagree_with_the_plays(world: World) -> None:
    brand = await make_world(world.api)
    draw = await lottery(brand, [{**POINTS_50, "quantity": 10}], budgetPoints=1_000)
    membership, token = await member(brand, 100)
    assert (await play(brand, draw["id"], membership, token))["userErrors"] == []
    await assert_audit_clean(brand)
    lid = pk(draw["id"])
    await tamper(f"UPDATE ledger_counter SET value = 7 WHERE key = 'lottery:l{lid}:budget'")
    await tamper(f"UPDATE lottery_play SET points_won = 5 WHERE lottery_id = {lid}")
    report = await brand.audit()
    assert sorted(v["check"] for v in report["violations"]) == ["LOTTERY_BUDGET_COUNT", "LOTTERY_PLAY_POINTS"]
    await tamper(f"UPDATE ledger_counter SET value = 50 WHERE key = 'lottery:l{lid}:budget'")
    await tamper(f"UPDATE lottery_play SET points_won = 50 WHERE lottery_id = {lid}")
    await assert_audit_clean(brand)

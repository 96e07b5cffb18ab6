"""Stored value (储值): top-ups with bonus tiers, paying from principal and bonus, top-up refunds of
unspent principal, points into stored value; never negative under concurrency."""

from __future__ import annotations

import asyncio

import pytest

from hub.errors import DomainError, ErrorCode
from hub.ledger.commands import Command, Outcome
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import LedgerTransaction, Membership, SpendingRules, TransactionKind
from hub.resolvers import wallets
from tests.helpers import Api, World, make_world, pk, tamper
from tests.spending.support import RULES, WALLET, assert_audit_clean, key, set_rules, top_up, wallet

REFUND = f"transaction {{ id kind details }} {WALLET} refundedFen bonusFen bonusPoints"
CONVERT = f"transaction {{ id kind }} {WALLET} points fen pointsBalance"
TIERS = [
    {"minFen": 10_000, "bonusFen": 500},
    {"minFen": 50_000, "bonusFen": 5_000, "bonusPoints": 200},
]


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    w = await make_world(api)
    await set_rules(w, topUpTiers=TIERS)
    return w


async def test_hq_sets_tiers_and_bad_rules_write_nothing(world: World) -> None:
    shown = await world.api.data(
        "query($id: ID!) { node(id: $id) { ... on Brand { spendingRules { topUpTiers { minFen bonusFen bonusPoints }"
        " pointsStepFen refundClawback } } } }",
        {"id": world.a.id},
        world.a.store,
    )
    rules = shown["node"]["spendingRules"]
    assert rules["topUpTiers"] == [
        {"minFen": 10_000, "bonusFen": 500, "bonusPoints": 0},
        {"minFen": 50_000, "bonusFen": 5_000, "bonusPoints": 200},
    ]
    assert (rules["pointsStepFen"], rules["refundClawback"]) == (100, "WITHIN_BALANCE")
    before = [(r.id, r.top_up_tiers, r.points_max_share_bp) for r in await SpendingRules.all().order_by("id")]
    for bad, field in (
        ({"topUpTiers": [{"minFen": 0, "bonusFen": 0, "bonusPoints": 1}]}, "topUpTiers.minFen"),
        ({"topUpTiers": [{"minFen": 100, "bonusFen": 101}]}, "topUpTiers.bonusFen"),
        ({"topUpTiers": [{"minFen": 100}]}, "topUpTiers"),
        (
            {"topUpTiers": [{"minFen": 100, "bonusFen": 1}, {"minFen": 100, "bonusFen": 2}]},
            "topUpTiers.minFen",
        ),
        ({"pointsMaxShareBasisPoints": 10_001}, "pointsMaxShareBasisPoints"),
        ({"pointsStepFen": 0}, "pointsStepFen"),
        ({"pointsMinBillFen": -1}, "pointsMinBillFen"),
        ({"excludedCategories": ["tobacco", "bad;name"]}, "excludedCategories"),
    ):
        out = await world.api.mutate("updateSpendingRules", {"brandId": world.a.id, **bad}, world.a.hq, RULES)
        assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": field}], bad
    foreign = await world.api.mutate("updateSpendingRules", {"brandId": world.b.id}, world.a.hq, RULES)
    assert foreign["userErrors"] == [{"code": "NOT_FOUND", "field": "brandId"}]
    after = [(r.id, r.top_up_tiers, r.points_max_share_bp) for r in await SpendingRules.all().order_by("id")]
    assert after == before


async def test_a_top_up_with_its_tier_exactly_once(world: World) -> None:
    membership, _, token = await world.enroll()
    k, ref = key("topup"), key("receipt")
    out = await top_up(world, membership, 60_000, k, ref)
    assert out["userErrors"] == [] and out["transaction"]["kind"] == "TOP_UP"
    assert (out["bonusFen"], out["bonusPoints"]) == (5_000, 200)
    assert out["wallet"] == {"principalFen": 60_000, "bonusFen": 5_000, "totalFen": 65_000}
    assert out["transaction"]["details"]["paymentReference"] == ref
    assert await world.balance(membership) == 200

    replay = await top_up(world, membership, 60_000, k, ref)
    assert replay["transaction"]["id"] == out["transaction"]["id"] and replay["bonusFen"] == 5_000
    conflict = await top_up(world, membership, 60_001, k, ref)
    assert conflict["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    # The same payment recorded again under another key is refused.
    twice = await top_up(world, membership, 60_000, key("other"), ref)
    assert twice["userErrors"] == [{"code": "ALREADY_EXISTS", "field": "paymentReference"}]
    # Below the first tier: no bonus.
    small = await top_up(world, membership, 9_999)
    assert (small["bonusFen"], small["bonusPoints"]) == (0, 0)
    assert await wallet(world, membership, token) == {
        "principalFen": 69_999,
        "bonusFen": 5_000,
        "totalFen": 74_999,
    }

    count = await LedgerTransaction.filter(kind=TransactionKind.TOP_UP).count()
    other_brand, _, _ = await world.enroll(world.b)
    for amount, reference, who, code, field in (
        (0, "r1", membership, "INVALID_INPUT", "amountFen"),
        (-5, "r2", membership, "INVALID_INPUT", "amountFen"),
        (2**31, "r3", membership, "INVALID_INPUT", "amountFen"),
        (100, "  ", membership, "INVALID_INPUT", "paymentReference"),
        (100, "x" * 65, membership, "INVALID_INPUT", "paymentReference"),
        (100, "r4", other_brand, "NOT_FOUND", "membershipId"),
    ):
        bad = await top_up(world, who, amount, reference=reference)
        assert bad["userErrors"] == [{"code": code, "field": field}], (amount, reference)
    assert await LedgerTransaction.filter(kind=TransactionKind.TOP_UP).count() == count
    assert await wallet(world, membership) == {"principalFen": 69_999, "bonusFen": 5_000, "totalFen": 74_999}
    await assert_audit_clean(world)


def test_paying_splits_principal_and_bonus_in_proportion() -> None:
    w = wallets.Wallet(10_000, 500)
    assert wallets.split(2_100, w) == (2_000, 100)
    assert wallets.split(1, w) == (1, 0)  # the bonus part is rounded down
    assert wallets.split(10_500, w) == (10_000, 500)
    assert wallets.split(7, wallets.Wallet(0, 7)) == (0, 7)
    with pytest.raises(DomainError) as refused:
        wallets.split(10_501, w)
    assert refused.value.code is ErrorCode.INSUFFICIENT_BALANCE
    for amount in range(0, 10_501, 37):
        principal, bonus = wallets.split(amount, w)
        assert principal + bonus == amount and 0 <= principal <= 10_000 and 0 <= bonus <= 500


async def _spend(ledger: LedgerWriter, membership: Membership, amount: int) -> Outcome | DomainError:
    def build(spend: wallets.Spend) -> Command:
        return Command(
            kind=TransactionKind.REDEEM,
            brand_id=membership.brand_id,
            legs=spend.legs,
            claim=claim("test", key("spend"), "spend"),
            membership_id=membership.id,
            details=spend.details,
        )

    try:
        return (await wallets.post_spend(ledger, membership, amount, build))[0]
    except DomainError as error:
        return error


async def test_two_tills_spending_one_wallet_never_take_it_below_zero(
    world: World, ledger: LedgerWriter
) -> None:
    membership_id, _, _ = await world.enroll()
    assert (await top_up(world, membership_id, 10_000))["wallet"]["bonusFen"] == 500
    membership = await Membership.get(id=pk(membership_id))
    results = await asyncio.gather(*(_spend(ledger, membership, 1_500) for _ in range(12)))
    won = [r for r in results if isinstance(r, Outcome)]
    lost = [r for r in results if isinstance(r, DomainError)]
    assert len(won) == 7 and {e.code for e in lost} == {ErrorCode.INSUFFICIENT_BALANCE}
    left = await wallet(world, membership_id)
    assert left["totalFen"] == 10_500 - 7 * 1_500 and left["principalFen"] >= 0 and left["bonusFen"] >= 0
    spent_bonus = sum(int(o.transaction.details["storedValueBonusFen"]) for o in won)
    assert left["bonusFen"] == 500 - spent_bonus
    await assert_audit_clean(world)


async def test_a_top_up_refund_pays_back_unspent_principal_only(world: World, ledger: LedgerWriter) -> None:
    membership_id, _, token = await world.enroll()
    paid = await top_up(world, membership_id, 50_000)  # + 5,000 bonus, + 200 points
    top_up_id = paid["transaction"]["id"]
    membership = await Membership.get(id=pk(membership_id))
    assert isinstance(await _spend(ledger, membership, 11_000), Outcome)  # 10,000 principal + 1,000 bonus
    assert await wallet(world, membership_id) == {
        "principalFen": 40_000,
        "bonusFen": 4_000,
        "totalFen": 44_000,
    }

    k = key("refund")
    part = await world.api.mutate(
        "refundTopUp", {"topUpId": top_up_id, "amountFen": 10_000, "idempotencyKey": k}, world.a.store, REFUND
    )
    assert part["userErrors"] == [] and part["transaction"]["kind"] == "TOP_UP_REFUND"
    # A fifth of the principal paid in: a fifth of its bonus value and points go back with it.
    assert (part["refundedFen"], part["bonusFen"], part["bonusPoints"]) == (10_000, 1_000, 40)
    assert part["wallet"] == {"principalFen": 30_000, "bonusFen": 3_000, "totalFen": 33_000}
    assert part["transaction"]["details"]["refundOf"] == pk(top_up_id)
    replay = await world.api.mutate(
        "refundTopUp", {"topUpId": top_up_id, "amountFen": 10_000, "idempotencyKey": k}, world.a.store, REFUND
    )
    assert replay["transaction"]["id"] == part["transaction"]["id"]
    conflict = await world.api.mutate(
        "refundTopUp", {"topUpId": top_up_id, "amountFen": 9_000, "idempotencyKey": k}, world.a.store, REFUND
    )
    assert conflict["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]

    count = await LedgerTransaction.filter(kind=TransactionKind.TOP_UP_REFUND).count()
    earn = await world.earn(membership_id, 100, key("earn"))
    for input, token_, code, field in (
        ({"topUpId": top_up_id, "amountFen": 30_001}, world.a.store, "INSUFFICIENT_BALANCE", "amountFen"),
        ({"topUpId": top_up_id, "amountFen": 0}, world.a.store, "INVALID_INPUT", "amountFen"),
        ({"topUpId": top_up_id}, world.b.store, "NOT_FOUND", "topUpId"),
        ({"topUpId": earn["transaction"]["id"]}, world.a.store, "NOT_FOUND", "topUpId"),
        ({"topUpId": "bogus"}, world.a.store, "INVALID_ID", "topUpId"),
    ):
        bad = await world.api.mutate("refundTopUp", {**input, "idempotencyKey": key("bad")}, token_, REFUND)
        assert bad["userErrors"] == [{"code": code, "field": field}], input
    assert await LedgerTransaction.filter(kind=TransactionKind.TOP_UP_REFUND).count() == count

    # The rest: all the principal left (the spent 10,000 is not paid back), and the bonus in proportion.
    rest = await world.api.mutate(
        "refundTopUp", {"topUpId": top_up_id, "idempotencyKey": key("rest")}, world.a.hq, REFUND
    )
    assert (rest["refundedFen"], rest["bonusFen"], rest["bonusPoints"]) == (30_000, 3_000, 120)
    assert rest["wallet"] == {"principalFen": 0, "bonusFen": 0, "totalFen": 0}
    nothing = await world.api.mutate(
        "refundTopUp", {"topUpId": top_up_id, "idempotencyKey": key("more")}, world.a.store, REFUND
    )
    assert nothing["userErrors"] == [{"code": "INSUFFICIENT_BALANCE", "field": "amountFen"}]
    assert await world.balance(membership_id, token) == 200 - 40 - 120 + 1
    await assert_audit_clean(world)


async def test_concurrent_refunds_of_one_top_up_pay_back_its_principal_once(world: World) -> None:
    membership_id, _, _ = await world.enroll()
    top_up_id = (await top_up(world, membership_id, 10_000))["transaction"]["id"]  # + 500 bonus
    results = await asyncio.gather(
        *(
            world.api.mutate(
                "refundTopUp",
                {"topUpId": top_up_id, "amountFen": 3_000, "idempotencyKey": key("race")},
                world.a.store,
                REFUND,
            )
            for _ in range(6)
        )
    )
    ok = [r for r in results if not r["userErrors"]]
    assert len(ok) == 3 and {r["userErrors"][0]["code"] for r in results if r["userErrors"]} == {
        "INSUFFICIENT_BALANCE"
    }
    # Cumulative proportions: 3,000 / 6,000 / 9,000 of 10,000 take back 150 / 300 / 450 of the bonus.
    assert sorted(r["bonusFen"] for r in ok) == [150, 150, 150]
    assert await wallet(world, membership_id) == {"principalFen": 1_000, "bonusFen": 50, "totalFen": 1_050}
    await assert_audit_clean(world)


async def test_points_into_stored_value_exactly_once(world: World) -> None:
    membership, _, token = await world.enroll()
    await world.earn(membership, 50_000, key("earn"))  # 500 points; 100 points are worth ¥1 (100 fen)
    k = key("convert")
    input = {"membershipId": membership, "points": 300, "idempotencyKey": k}
    out = await world.api.mutate("convertPointsToStoredValue", input, token, CONVERT)
    assert out["userErrors"] == [] and out["transaction"]["kind"] == "CONVERT"
    assert (out["points"], out["fen"], out["pointsBalance"]) == (300, 300, 200)
    assert out["wallet"] == {"principalFen": 0, "bonusFen": 300, "totalFen": 300}
    again = await world.api.mutate("convertPointsToStoredValue", input, token, CONVERT)
    assert again["transaction"]["id"] == out["transaction"]["id"] and again["pointsBalance"] == 200
    conflict = await world.api.mutate("convertPointsToStoredValue", {**input, "points": 100}, token, CONVERT)
    assert conflict["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    for points, code, field in ((201, "INSUFFICIENT_POINTS", "points"), (0, "INVALID_INPUT", "points")):
        bad = await world.api.mutate(
            "convertPointsToStoredValue",
            {**input, "points": points, "idempotencyKey": key("bad")},
            token,
            CONVERT,
        )
        assert bad["userErrors"][0]["code"] == code and bad["userErrors"][0]["field"] == field
    assert await world.balance(membership) == 200
    assert await wallet(world, membership) == {"principalFen": 0, "bonusFen": 300, "totalFen": 300}

    # Brand B: 3 points are worth 2 fen, so only multiples of 3 points convert.
    await world.api.mutate(
        "updateBrandSettings",
        {"brandId": world.b.id, "pointValuePoints": 3, "pointValueFen": 2},
        world.b.hq,
        "brand { id }",
    )
    at_b, _, _ = await world.enroll(world.b)
    await world.earn(at_b, 100_000, key("earn"), world.b)  # 100 points at ¥10 a point
    odd = await world.api.mutate(
        "convertPointsToStoredValue",
        {"membershipId": at_b, "points": 10, "idempotencyKey": key("c")},
        world.b.store,
        CONVERT,
    )
    assert odd["userErrors"] == [{"code": "INVALID_INPUT", "field": "points"}]
    even = await world.api.mutate(
        "convertPointsToStoredValue",
        {"membershipId": at_b, "points": 9, "idempotencyKey": key("c")},
        world.b.store,
        CONVERT,
    )
    assert (even["fen"], even["pointsBalance"]) == (6, 91)
    await assert_audit_clean(world)
    await assert_audit_clean(world, world.b)


async def test_the_audit_sees_a_refund_counter_that_disagrees_with_the_refunds(world: World) -> None:
    membership, _, _ = await world.enroll()
    gid = (await top_up(world, membership, 2_000))["transaction"]["id"]
    top_up_id = pk(gid)
    out = await world.api.mutate(
        "refundTopUp", {"topUpId": gid, "amountFen": 500, "idempotencyKey": key("r")}, world.a.store, REFUND
    )
    assert out["userErrors"] == []
    await assert_audit_clean(world)
    await tamper(f"UPDATE ledger_counter SET value = 700 WHERE key = 'sv:refunded:t{top_up_id}'")
    try:
        report = await world.audit()
        found = {(v["check"], v["subject"]) for v in report["violations"]}
        assert ("TOP_UP_REFUND_COUNT", f"transaction {top_up_id}") in found
    finally:
        await tamper(f"UPDATE ledger_counter SET value = 500 WHERE key = 'sv:refunded:t{top_up_id}'")
    await assert_audit_clean(world)


async def test_a_rules_change_is_in_the_change_log(world: World) -> None:
    await set_rules(world, pointsStepFen=200)
    try:
        query = "query($a: String) { changeLog(first: 5, action: $a) { edges { node { action subjectType before after } } } }"
        data = await world.api.data(query, {"a": "spending.setRules"}, world.a.hq)
        latest = data["changeLog"]["edges"][0]["node"]
        assert latest["subjectType"] == "Brand"
        assert (latest["before"]["points_step_fen"], latest["after"]["points_step_fen"]) == (100, 200)
        assert latest["after"]["top_up_tiers"][0]["minFen"] == 10_000
    finally:
        await set_rules(world, pointsStepFen=100)

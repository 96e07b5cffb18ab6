"""Checkout: the quote by the brand's rules, one transaction with a coupon, points, stored value and
the cash part earning points; refunds in part and in full; concurrency on one member's balances."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Leg
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import LedgerTransaction, Purchase, TransactionKind
from hub.resolvers.maturity import mature_due
from tests.helpers import Api, World, make_world, pk, tamper
from tests.spending.support import (
    assert_audit_clean,
    checkout,
    coupons,
    issue,
    key,
    refund,
    set_rules,
    template,
    top_up,
    wallet,
)

QUOTE = """query($m: ID!, $b: BigInt!, $l: [PurchaseLineInput!], $c: ID) {
  quoteCheckout(membershipId: $m, billFen: $b, lines: $l, couponId: $c) {
    billFen couponOffFen eligibleFen maxPointsFen maxPoints pointsAvailable explanation cashFenAtMostPoints
    wallet { totalFen }
  }
}"""


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    w = await make_world(api)
    await set_rules(
        w,
        pointsMinBillFen=1_000,
        pointsMaxShareBasisPoints=5_000,
        pointsStepFen=100,
        excludedCategories=["tobacco"],
    )
    return w


async def _member(world: World, points: int = 0, stored_value: int = 0) -> tuple[str, str]:
    """A new member with ``points`` available (earned: 1 point per ¥1) and ``stored_value`` paid in."""
    membership, _, token = await world.enroll()
    if points:
        assert (await world.earn(membership, points * 100, key("seed")))["balance"] == points
    if stored_value:
        assert (await top_up(world, membership, stored_value))["userErrors"] == []
    return membership, token


async def _quote(
    world: World, membership: str, bill: int, lines: list | None = None, coupon: str | None = None
) -> dict:
    data = await world.api.data(QUOTE, {"m": membership, "b": bill, "l": lines, "c": coupon}, world.a.store)
    return dict(data["quoteCheckout"])


async def test_the_quote_applies_the_brands_rules(world: World) -> None:
    membership, _ = await _member(world, points=6_000)
    lines = [{"amountFen": 6_000, "category": "food"}, {"amountFen": 4_000, "category": "tobacco"}]
    q = await _quote(world, membership, 10_000, lines)
    # Tobacco is excluded: points may pay half of the 6,000 fen of food.
    assert (q["eligibleFen"], q["maxPointsFen"], q["maxPoints"], q["cashFenAtMostPoints"]) == (
        6_000,
        3_000,
        3_000,
        7_000,
    )
    assert (await _quote(world, membership, 999))["maxPointsFen"] == 0  # below the minimum bill
    assert (await _quote(world, membership, 10_050))["maxPointsFen"] == 5_000  # whole yuan: 5,025 -> 5,000
    poorer, _ = await _member(world, points=1_234)
    q = await _quote(world, poorer, 100_000)
    assert (q["maxPointsFen"], q["maxPoints"], q["pointsAvailable"]) == (1_200, 1_200, 1_234)
    assert "1234 points" in q["explanation"]
    # A coupon comes off first; points pay a share of what it leaves.
    t = await template(world, amountOffFen=2_000, minBillFen=5_000)
    coupon = (await issue(world, t["id"], membership))["coupons"][0]["id"]
    q = await _quote(world, membership, 10_000, coupon=coupon)
    assert (q["couponOffFen"], q["eligibleFen"], q["maxPointsFen"]) == (2_000, 8_000, 4_000)
    # Nothing is held: the quote wrote nothing.
    assert await world.balance(membership) == 6_000
    assert (await coupons(world, membership, world.a.hq, "AVAILABLE"))[0]["id"] == coupon
    # Another brand's membership is not found.
    other, _, _ = await world.enroll(world.b)
    body = await world.api.gql(QUOTE, {"m": other, "b": 1_000}, world.a.store)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_one_checkout_with_a_coupon_points_and_stored_value(world: World) -> None:
    membership, token = await _member(world, points=5_000, stored_value=20_000)
    t = await template(world, amountOffFen=1_000, minBillFen=5_000)
    coupon = (await issue(world, t["id"], membership))["coupons"][0]["id"]
    k = key("till")
    fields = {"couponId": coupon, "pointsFen": 3_000, "storedValueFen": 2_000}
    out = await checkout(world, membership, 10_000, k, **fields)
    assert out["userErrors"] == [] and out["transaction"]["kind"] == "CHECKOUT"
    # 10,000 = 1,000 coupon + 3,000 points + 2,000 stored value + 4,000 cash; the cash earns 40 points.
    assert (out["couponOffFen"], out["pointsUsed"], out["cashFen"], out["pointsEarned"]) == (
        1_000,
        3_000,
        4_000,
        40,
    )
    assert out["pointsBalance"] == 5_000 - 3_000 + 40
    assert out["wallet"]["totalFen"] == 18_000
    details = out["transaction"]["details"]
    assert (
        details["billFen"] == 10_000 and details["amountFen"] == 4_000 and details["couponCode"] == t["code"]
    )
    (used,) = await coupons(world, membership, token, "USED")
    assert used["usedBy"]["id"] == out["transaction"]["id"]
    purchase = await Purchase.get(transaction_id=pk(out["transaction"]["id"]))
    assert (purchase.amount_fen, purchase.points) == (4_000, 40)

    replay = await checkout(world, membership, 10_000, k, **fields)
    assert replay["transaction"]["id"] == out["transaction"]["id"] and replay["pointsUsed"] == 3_000
    assert replay["pointsBalance"] == out["pointsBalance"]
    conflict = await checkout(world, membership, 10_000, k, **{**fields, "storedValueFen": 2_100})
    assert conflict["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    assert await world.balance(membership) == 2_040
    await assert_audit_clean(world)


async def test_bad_checkouts_write_nothing(world: World) -> None:
    membership, _ = await _member(world, points=1_000, stored_value=1_500)
    t = await template(world, amountOffFen=500, minBillFen=0)
    coupon = (await issue(world, t["id"], membership))["coupons"][0]["id"]
    used_up = (await issue(world, t["id"], membership))["coupons"][0]["id"]
    assert (await checkout(world, membership, 1_000, couponId=used_up))["userErrors"] == []
    stranger, _ = await _member(world)
    foreign = (await issue(world, t["id"], stranger))["coupons"][0]["id"]
    at_b, _, _ = await world.enroll(world.b)
    count = await LedgerTransaction.filter(kind=TransactionKind.CHECKOUT).count()
    cases = [
        ({"billFen": 0}, "INVALID_INPUT", "billFen"),
        ({"billFen": -100}, "INVALID_INPUT", "billFen"),
        ({"pointsFen": -100}, "INVALID_INPUT", "pointsFen"),
        ({"storedValueFen": -1}, "INVALID_INPUT", "storedValueFen"),
        ({"pointsFen": 150}, "INVALID_INPUT", "pointsFen"),  # not whole yuan
        ({"pointsFen": 1_100}, "LIMIT_REACHED", "pointsFen"),  # more than half the bill
        ({"billFen": 999, "pointsFen": 100}, "LIMIT_REACHED", "pointsFen"),  # below the minimum bill
        ({"billFen": 6_000, "pointsFen": 2_000}, "INSUFFICIENT_POINTS", "points"),
        ({"billFen": 5_000, "storedValueFen": 1_501}, "INSUFFICIENT_BALANCE", "storedValueFen"),
        (
            {"pointsFen": 1_000, "storedValueFen": 1_001},
            "INVALID_INPUT",
            "storedValueFen",
        ),  # more than the bill
        ({"couponId": used_up}, "ALREADY_USED", "couponId"),
        ({"couponId": foreign}, "NOT_FOUND", "couponId"),
        ({"couponId": "bogus"}, "INVALID_ID", "couponId"),
        ({"membershipId": at_b}, "NOT_FOUND", "membershipId"),
        ({"lines": [{"amountFen": 100}]}, "INVALID_INPUT", "lines"),
    ]
    for fields, code, field in cases:
        input = {"billFen": 2_000, "couponId": coupon, **fields}
        out = await checkout(world, input.pop("membershipId", membership), input.pop("billFen"), **input)
        assert out["userErrors"] == [{"code": code, "field": field}], fields
    assert await LedgerTransaction.filter(kind=TransactionKind.CHECKOUT).count() == count
    assert await world.balance(membership) == 1_000 + 5  # the first checkout's cash (500 fen) earned 5
    assert (await wallet(world, membership))["totalFen"] == 1_500
    assert [c["id"] for c in await coupons(world, membership, world.a.hq, "AVAILABLE")] == [coupon]
    await assert_audit_clean(world)


async def test_two_tills_spending_the_same_points_and_wallet(world: World) -> None:
    membership, _ = await _member(world, points=1_000, stored_value=1_000)
    results = await asyncio.gather(
        *(checkout(world, membership, 2_000, pointsFen=300, storedValueFen=300) for _ in range(8))
    )
    ok = [r for r in results if not r["userErrors"]]
    refused = {r["userErrors"][0]["code"] for r in results if r["userErrors"]}
    # Each pays 300 points and 300 fen of stored value: three fit in 1,000 of each.
    assert len(ok) == 3 and refused <= {"INSUFFICIENT_POINTS", "INSUFFICIENT_BALANCE"}
    earned = sum(r["pointsEarned"] for r in ok)
    assert await world.balance(membership) == 1_000 - 900 + earned
    assert (await wallet(world, membership))["totalFen"] == 100
    await assert_audit_clean(world)


async def test_end_to_end_checkout_refunded_in_part_then_in_full(world: World) -> None:
    membership, token = await _member(world, points=5_000)
    await set_rules(world, topUpTiers=[{"minFen": 10_000, "bonusFen": 1_000}])
    try:
        assert (await top_up(world, membership, 10_000))["wallet"] == {
            "principalFen": 10_000,
            "bonusFen": 1_000,
            "totalFen": 11_000,
        }
    finally:
        await set_rules(world, topUpTiers=[])
    t = await template(world, amountOffFen=2_000, minBillFen=10_000)
    coupon = (await issue(world, t["id"], membership))["coupons"][0]["id"]
    # 20,000 = 2,000 coupon + 5,000 points + 5,500 stored value (5,000 principal + 500 bonus) + 7,500 cash.
    out = await checkout(world, membership, 20_000, couponId=coupon, pointsFen=5_000, storedValueFen=5_500)
    assert out["userErrors"] == [] and (out["pointsUsed"], out["cashFen"], out["pointsEarned"]) == (
        5_000,
        7_500,
        75,
    )
    assert out["pointsBalance"] == 75
    assert out["wallet"] == {"principalFen": 5_000, "bonusFen": 500, "totalFen": 5_500}
    checkout_id = out["transaction"]["id"]

    # A fifth of what was paid (18,000) comes back: 3,600.
    k = key("refund")
    part = await refund(world, checkout_id, 3_600, k)
    assert part["userErrors"] == [] and part["transaction"]["kind"] == "CHECKOUT_REFUND"
    assert part["transaction"]["details"]["refundOf"] == pk(checkout_id)
    assert (part["refundedFen"], part["cashFen"], part["pointsReturned"], part["storedValueFen"]) == (
        3_600,
        1_500,
        1_000,
        1_100,
    )
    assert part["pointsClawedBack"] == 15 and part["coupons"] == []  # the coupon stays used in part
    assert part["pointsBalance"] == 75 + 1_000 - 15
    assert part["wallet"] == {"principalFen": 6_000, "bonusFen": 600, "totalFen": 6_600}
    replay = await refund(world, checkout_id, 3_600, k)
    assert replay["transaction"]["id"] == part["transaction"]["id"] and replay["pointsBalance"] == 1_060
    conflict = await refund(world, checkout_id, 3_700, k)
    assert conflict["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    over = await refund(world, checkout_id, 14_401)
    assert over["userErrors"] == [{"code": "LIMIT_REACHED", "field": "amountFen"}]
    assert await world.balance(membership, token) == 1_060

    # The rest: every tender back exactly, the coupon too (a new one with the same expiry).
    rest = await refund(world, checkout_id, token=world.a.hq)
    assert (rest["refundedFen"], rest["cashFen"], rest["pointsReturned"], rest["storedValueFen"]) == (
        14_400,
        6_000,
        4_000,
        4_400,
    )
    assert rest["pointsClawedBack"] == 60 and rest["pointsBalance"] == 5_000
    assert rest["wallet"] == {"principalFen": 10_000, "bonusFen": 1_000, "totalFen": 11_000}
    assert [c["status"] for c in rest["coupons"]] == ["AVAILABLE"]
    assert [c["id"] for c in await coupons(world, membership, token, "AVAILABLE")] == [
        rest["coupons"][0]["id"]
    ]
    done = await refund(world, checkout_id)
    assert done["userErrors"] == [{"code": "LIMIT_REACHED", "field": "amountFen"}]
    await assert_audit_clean(world)


async def test_refunding_a_purchase_whose_points_were_spent(world: World) -> None:
    """Earned points already spent: forgiven by default, or deducted from the cash paid back."""
    membership, _ = await _member(world)
    purchase = await world.earn(membership, 10_000, key("buy"))  # 100 points
    assert (await world.redeem(membership, 80, key("spend")))["balance"] == 20
    out = await refund(world, purchase["transaction"]["id"], 5_000)
    assert (out["cashFen"], out["pointsClawedBack"], out["pointsBalance"]) == (5_000, 20, 0)
    assert out["transaction"]["details"]["clawbackShortfall"] == 30

    await set_rules(world, refundClawback="DEDUCT_FROM_CASH")
    try:
        rest = await refund(world, purchase["transaction"]["id"])
    finally:
        await set_rules(world, refundClawback="WITHIN_BALANCE")
    # 50 points owed, none left: their value (50 fen at 100 points = ¥1) comes off the cash.
    assert (rest["cashFen"], rest["pointsClawedBack"], rest["transaction"]["details"]["cashDeductedFen"]) == (
        4_950,
        0,
        50,
    )
    await assert_audit_clean(world)


async def test_concurrent_refunds_never_refund_more_than_was_paid(world: World) -> None:
    membership, _ = await _member(world, points=2_000)
    out = await checkout(world, membership, 10_000, pointsFen=2_000)
    results = await asyncio.gather(*(refund(world, out["transaction"]["id"], 3_000) for _ in range(6)))
    ok = [r for r in results if not r["userErrors"]]
    assert len(ok) == 3 and {r["userErrors"][0]["code"] for r in results if r["userErrors"]} == {
        "LIMIT_REACHED"
    }
    # 9,000 of 10,000 refunded: 1,800 of the 2,000 points back, 7,200 of the 8,000 cash; 72 of 80 earned.
    assert sum(r["pointsReturned"] for r in ok) == 1_800 and sum(r["cashFen"] for r in ok) == 7_200
    assert sum(r["pointsClawedBack"] for r in ok) == 72
    assert await world.balance(membership) == 80 + 1_800 - 72
    await assert_audit_clean(world)


async def test_the_audit_sees_checkout_details_that_disagree_with_the_postings(world: World) -> None:
    membership, _ = await _member(world, points=1_000)
    out = await checkout(world, membership, 4_000, pointsFen=1_000)
    txn = pk(out["transaction"]["id"])
    await refund(world, out["transaction"]["id"], 500)
    await assert_audit_clean(world)
    await tamper(f"UPDATE ledger_counter SET value = 900 WHERE key = 'refund:t{txn}'")
    try:
        found = {(v["check"], v["subject"]) for v in (await world.audit())["violations"]}
        assert ("REFUND_COUNT", f"transaction {txn}") in found
    finally:
        await tamper(f"UPDATE ledger_counter SET value = 500 WHERE key = 'refund:t{txn}'")
    await assert_audit_clean(world)


async def test_one_coupon_at_several_tills_pays_one_bill(world: World) -> None:
    membership, token = await _member(world)
    t = await template(world, amountOffFen=500, minBillFen=0)
    coupon = (await issue(world, t["id"], membership))["coupons"][0]["id"]
    results = await asyncio.gather(*(checkout(world, membership, 3_000, couponId=coupon) for _ in range(8)))
    ok = [r for r in results if not r["userErrors"]]
    assert len(ok) == 1 and ok[0]["couponOffFen"] == 500
    assert {r["userErrors"][0]["code"] for r in results if r["userErrors"]} == {"ALREADY_USED"}
    # Nothing of the refused checkouts was written: one purchase, its points only.
    assert await world.balance(membership) == 25
    assert [c["status"] for c in await coupons(world, membership, token)] == ["USED"]
    await assert_audit_clean(world)


async def test_a_refund_takes_pending_points_first_then_matured_ones(
    world: World, ledger: LedgerWriter
) -> None:
    """Earned points still pending (a return window) are cancelled before they mature; what matured
    since is taken from the available points."""
    query = "query($id: ID!) { node(id: $id) { ... on Membership { points { available pending } } } }"
    settings = {"brandId": world.b.id, "pendingDays": 7}
    await world.api.mutate("updateBrandSettings", settings, world.b.hq, "brand { id }")
    try:
        membership, _, _ = await world.enroll(world.b)
        bought = await world.earn(membership, 100_000, key("buy"), world.b)  # 100 points, pending
    finally:
        await world.api.mutate(
            "updateBrandSettings", {**settings, "pendingDays": 0}, world.b.hq, "brand { id }"
        )
    half = await refund(world, bought["transaction"]["id"], 50_000, token=world.b.store)
    assert (half["cashFen"], half["pointsClawedBack"]) == (50_000, 50)
    held = (await world.api.data(query, {"id": membership}, world.b.hq))["node"]["points"]
    assert held == {"available": 0, "pending": 50}
    assert await mature_due(ledger, datetime.now(UTC) + timedelta(days=8)) >= 1
    rest = await refund(world, bought["transaction"]["id"], token=world.b.store)
    assert (rest["cashFen"], rest["pointsClawedBack"], rest["pointsBalance"]) == (50_000, 50, 0)
    held = (await world.api.data(query, {"id": membership}, world.b.hq))["node"]["points"]
    assert held == {"available": 0, "pending": 0}
    await assert_audit_clean(world, world.b)


async def test_a_reversed_purchase_is_not_refunded(world: World, ledger: LedgerWriter) -> None:
    membership, _ = await _member(world)
    bought = await world.earn(membership, 1_000, key("buy"))  # 10 points
    brand, mid = pk(world.a.id), pk(membership)
    await ledger.submit(
        Command(
            kind=TransactionKind.REVERSE,
            brand_id=brand,
            legs=(Leg(AccountRef.member(brand, mid), -10), Leg(AccountRef.issuance_for(brand, mid), 10)),
            claim=claim("test", key("reverse"), "reverse"),
            membership_id=mid,
            reverses_id=pk(bought["transaction"]["id"]),
        )
    )
    out = await refund(world, bought["transaction"]["id"])
    assert out["userErrors"] == [{"code": "ALREADY_REVERSED", "field": "transactionId"}]
    await assert_audit_clean(world)

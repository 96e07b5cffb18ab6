"""Redemption at the partner's store: the member's code, one ledger transaction, limits, void, privacy."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from hub.models import LedgerCounter, LedgerTransaction, PartnerLine, RedemptionCode
from tests.helpers import Api, Brand, World, make_brand, make_world, pk
from tests.partnerships.support import (
    PARTNERSHIP,
    REDEMPTION,
    active,
    audit_clean,
    code_for,
    key,
    redeem,
    respond,
    void,
    wash_terms,
)


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


@pytest.fixture(scope="module")
async def third(world: World) -> Brand:
    return await make_brand(world.api, world.platform, "Salon")


async def member_with_points(world: World, points: int) -> tuple[str, str, str]:
    """A member of A (Mart: 1 point per ¥1) with ``points`` points: (membership, phone, token)."""
    membership, phone, token = await world.enroll()
    earned = await world.earn(membership, points * 100, key("earn"))
    assert earned["userErrors"] == [] and earned["points"] == points, earned
    return membership, phone, token


async def written(world: World) -> tuple[int, int]:
    """Ledger transactions of the test's two brands, and partnership lines (other tests' background work,
    such as another brand's clearing job, cannot move these)."""
    brands = [pk(world.a.id), pk(world.b.id)]
    return await LedgerTransaction.filter(brand_id__in=brands).count(), await PartnerLine.all().count()


HISTORY = (
    "query($id: ID!) { node(id: $id) { ... on Membership { history(first: 5) { edges { node {"
    " delta transaction { kind } } } } } } }"
)


async def test_a_member_pays_for_a_wash_with_points(world: World) -> None:
    p = await active(world, world.a, world.b)
    offer = p["terms"]["offers"][0]["id"]
    membership, phone, token = await member_with_points(world, 2_000)
    code = await code_for(world, membership, token)
    k = key("receipt")
    out = await redeem(world, world.b.store, code, offer, k)
    assert out["userErrors"] == [] and out["replayed"] is False, out
    r = out["redemption"]
    assert (r["points"], r["settlementFen"], r["version"], r["storeId"]) == (
        1_500,
        1_500,
        1,
        world.b.store_id,
    )
    assert r["offer"] == {"code": "wash"} and len(r["memberPseudonym"]) == 20
    assert await world.balance(membership) == 500
    # A retry answers the first result; the same key with another request is refused.
    again = await redeem(world, world.b.store, code, offer, k)
    assert again["redemption"] == r and again["replayed"] is True
    other_code = await code_for(world, membership, token)
    conflict = await redeem(world, world.b.store, other_code, offer, k)
    assert conflict["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    # The code is used: a new key cannot use it again.
    reused = await redeem(world, world.b.store, code, offer)
    assert reused["userErrors"] == [{"code": "ALREADY_USED", "field": "code"}]
    # The QR payload works like the digits; the same member is the same pseudonym.
    qr = await world.api.mutate(
        "createRedemptionCode", {"membershipId": membership}, token, "code { qrPayload }"
    )
    poor = await redeem(world, world.b.store, qr["code"]["qrPayload"], offer)
    assert poor["userErrors"] == [{"code": "INSUFFICIENT_POINTS", "field": "points"}]
    assert await world.balance(membership) == 500

    # A's member sees it in its history.
    history = await world.api.data(HISTORY, {"id": membership}, token)
    latest = history["node"]["history"]["edges"][0]["node"]
    assert latest == {"delta": -1_500, "transaction": {"kind": "PARTNER_REDEEM"}}
    # Privacy: nothing of A's member reaches B beyond the pseudonym.
    text = json.dumps(out)
    assert phone not in text and phone[-8:] not in text and membership not in text
    # B's store cannot read A's membership or the ledger transaction.
    node = "query($id: ID!) { node(id: $id) { id } }"
    assert (await world.api.data(node, {"id": membership}, world.b.store))["node"] is None
    txn = await LedgerTransaction.filter(kind="partner_redeem").order_by("-id").first()
    assert txn is not None
    # Both HQs see the same open statement and balance.
    for hq in (world.a.hq, world.b.hq):
        data = await world.api.data(
            "query($p: ID!) { partnershipOpenBalance(partnershipId: $p) { lines points fen }"
            " partnershipStatements(partnershipId: $p) { edges { node { status totals { lines points fen }"
            " byStore { storeId totals { fen } } } } } }",
            {"p": p["id"]},
            hq,
        )
        assert data["partnershipOpenBalance"] == {"lines": 1, "points": 1_500, "fen": 1_500}
        [stmt] = [e["node"] for e in data["partnershipStatements"]["edges"]]
        assert stmt["status"] == "OPEN" and stmt["totals"] == {"lines": 1, "points": 1_500, "fen": 1_500}
        assert stmt["byStore"] == [{"storeId": world.b.store_id, "totals": {"fen": 1_500}}]
    await audit_clean(world)


async def test_refusals_write_nothing(world: World, third: Brand) -> None:
    p = await active(world, world.a, world.b, storeIds=[world.b.store_id])
    offer = p["terms"]["offers"][0]["id"]
    elsewhere = await active(world, world.a, third)
    foreign_offer = elsewhere["terms"]["offers"][0]["id"]
    membership, _, token = await member_with_points(world, 5_000)
    # A member of B only: its code is for a membership of another brand.
    b_member, _, b_token = await world.enroll(world.b)

    before = await written(world)
    balance = await world.balance(membership)
    code = await code_for(world, membership, token)
    cases = [
        (third.store, code, offer, "NOT_FOUND", "offerId"),  # a store of a third brand
        (world.b.store, code, foreign_offer, "NOT_FOUND", "offerId"),  # an offer of another partnership
        (world.a.store, code, offer, "STORE_NOT_PARTICIPATING", "offerId"),  # the points brand's store
        (world.b.store2, code, offer, "STORE_NOT_PARTICIPATING", "offerId"),  # not in the terms' stores
        (world.b.store, "12345", offer, "INVALID_CODE", "code"),
        (world.b.store, "0000000000", offer, "INVALID_CODE", "code"),
        (world.b.store, await code_for(world, b_member, b_token), offer, "INVALID_CODE", "code"),
    ]
    for store, c, o, error, field in cases:
        out = await redeem(world, store, c, o)
        assert out["userErrors"] == [{"code": error, "field": field}], (error, out)
    # An expired code.
    expired = await code_for(world, membership, token)
    await RedemptionCode.filter(code=expired).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    out = await redeem(world, world.b.store, expired, offer)
    assert out["userErrors"] == [{"code": "CODE_EXPIRED", "field": "code"}]
    # Suspended, then ended.
    for status in ("SUSPENDED", "ENDED"):
        moved = await world.api.mutate(
            "setPartnershipStatus",
            {"partnershipId": p["id"], "status": status},
            world.a.hq,
            "partnership { status }",
        )
        assert moved["partnership"] == {"status": status}
        out = await redeem(world, world.b.store, code, offer)
        assert out["userErrors"] == [{"code": "PARTNERSHIP_NOT_ACTIVE", "field": "offerId"}]
    # Only the member makes a code, for its own membership.
    refused = await world.api.mutate(
        "createRedemptionCode", {"membershipId": membership}, world.b.store, "code { code }"
    )
    assert refused["userErrors"][0]["code"] == "PERMISSION_DENIED"
    _, _, stranger = await world.enroll()
    hidden = await world.api.mutate(
        "createRedemptionCode", {"membershipId": membership}, stranger, "code { code }"
    )
    assert hidden["userErrors"] == [{"code": "NOT_FOUND", "field": "membershipId"}]
    assert await written(world) == before and await world.balance(membership) == balance
    await audit_clean(world, world.a, world.b, third)


async def test_the_budget_and_the_daily_limit_hold_under_50_concurrent_redemptions(world: World) -> None:
    # Budget: 20 redemptions in total, 50 members trying at once.
    p = await active(world, world.a, world.b, budgetCount=20, budgetFen=1_500 * 25)
    offer = p["terms"]["offers"][0]["id"]
    members = [await member_with_points(world, 1_500) for _ in range(50)]
    codes = [await code_for(world, m, t) for m, _, t in members]
    results = await asyncio.gather(*(redeem(world, world.b.store, c, offer) for c in codes))
    ok = [r for r in results if r["userErrors"] == []]
    refused = [r["userErrors"] for r in results if r["userErrors"]]
    assert len(ok) == 20 and refused == [[{"code": "LIMIT_REACHED", "field": "offerId"}]] * 30
    balances = [await world.balance(m) for m, _, _ in members]
    assert sorted(balances) == [0] * 20 + [1_500] * 30
    pid = pk(p["id"])
    assert (await LedgerCounter.get(key=f"partner:p{pid}:count")).value == 20

    # Daily limit: 3 per member per day, one member with 50 codes at once.
    q = await active(world, world.a, world.b, limitPerDay=3, limitPerMonth=10)
    wash = q["terms"]["offers"][0]["id"]
    membership, _, token = await member_with_points(world, 1_500 * 50)
    codes = [await code_for(world, membership, token) for _ in range(50)]
    results = await asyncio.gather(*(redeem(world, world.b.store, c, wash) for c in codes))
    assert sum(r["userErrors"] == [] for r in results) == 3
    assert {json.dumps(r["userErrors"]) for r in results if r["userErrors"]} == {
        json.dumps([{"code": "LIMIT_REACHED", "field": "code"}])
    }
    assert await world.balance(membership) == 1_500 * 47
    pseudonyms = {r["redemption"]["memberPseudonym"] for r in results if r["userErrors"] == []}
    assert len(pseudonyms) == 1  # one member, one pseudonym within the partnership
    await audit_clean(world)


async def test_a_version_change_mid_way_keeps_old_redemptions_on_their_version(world: World) -> None:
    p = await active(world, world.a, world.b)
    old_offer = p["terms"]["offers"][0]["id"]
    membership, _, token = await member_with_points(world, 5_000)
    first = await redeem(world, world.b.store, await code_for(world, membership, token), old_offer)
    assert first["redemption"]["version"] == 1
    cheaper = wash_terms(offers=[{**wash_terms()["offers"][0], "pointsPrice": 1_000, "settlementFen": 1_200}])
    proposed = await world.api.mutate(
        "proposePartnershipTerms", {"partnershipId": p["id"], "terms": cheaper}, world.b.hq, PARTNERSHIP
    )
    assert proposed["userErrors"] == []
    # Not in force yet: still version 1.
    second = await redeem(world, world.b.store, await code_for(world, membership, token), old_offer)
    assert (second["redemption"]["version"], second["redemption"]["points"]) == (1, 1_500)
    assert (await respond(world, world.a, p["id"], 2))["partnership"]["currentVersion"] == 2
    # The old offer id names the offer; the version in force prices it.
    third = await redeem(world, world.b.store, await code_for(world, membership, token), old_offer)
    assert (
        third["redemption"]["version"],
        third["redemption"]["points"],
        third["redemption"]["settlementFen"],
    ) == (
        2,
        1_000,
        1_200,
    )
    lines = (
        await PartnerLine.filter(partnership_id=pk(p["id"])).order_by("id").values_list("version", flat=True)
    )
    assert list(lines) == [1, 1, 2]
    assert await world.balance(membership) == 5_000 - 1_500 - 1_500 - 1_000
    await audit_clean(world)


async def test_a_void_reverses_every_leg_exactly_once(world: World) -> None:
    p = await active(world, world.a, world.b)
    offer = p["terms"]["offers"][0]["id"]
    membership, _, token = await member_with_points(world, 1_500)
    done = await redeem(world, world.b.store, await code_for(world, membership, token), offer)
    rid = done["redemption"]["id"]
    assert await world.balance(membership) == 0
    # Another store of B, and a store of A, do not find it.
    for store in (world.b.store2, world.a.store):
        out = await void(world, store, rid)
        assert out["userErrors"] == [{"code": "NOT_FOUND", "field": "redemptionId"}]
    # Three voids at once, two of them one request retried: exactly one void is written.
    k = key("void")
    results = await asyncio.gather(
        void(world, world.b.store, rid, k),
        void(world, world.b.store, rid, k),
        void(world, world.b.store, rid),
    )
    won = [r for r in results if r["userErrors"] == []]
    assert len({r["redemption"]["id"] for r in won}) == 1
    assert all(
        r["userErrors"] == [{"code": "ALREADY_REVERSED", "field": None}] for r in results if r not in won
    )
    voided = won[0]
    later = await void(world, world.b.store, rid)
    assert later["userErrors"] == [{"code": "ALREADY_REVERSED", "field": None}]
    v = voided["redemption"]
    assert (v["points"], v["settlementFen"], v["voids"]) == (-1_500, -1_500, rid)
    assert await world.balance(membership) == 1_500
    # A void of a void is refused.
    out = await void(world, world.b.store, v["id"])
    assert out["userErrors"] == [{"code": "INVALID_STATE", "field": "redemptionId"}]
    balance = await world.api.data(
        "query($p: ID!) { partnershipOpenBalance(partnershipId: $p) { lines points fen } }",
        {"p": p["id"]},
        world.a.hq,
    )
    assert balance["partnershipOpenBalance"] == {"lines": 2, "points": 0, "fen": 0}
    # The budget and limits were given back.
    pid = pk(p["id"])
    assert (await LedgerCounter.get(key=f"partner:p{pid}:count")).value == 0
    await audit_clean(world)


async def test_a_coupon_offer_issues_the_offer_brands_coupon(world: World) -> None:
    template = await world.api.mutate(
        "createCouponTemplate",
        {
            "brandId": world.b.id,
            "code": key("wash"),
            "name": "Free wash",
            "kind": "FREE_ITEM",
            "freeItemSku": "wash",
        },
        world.b.hq,
        "template { id }",
    )
    tid = template["template"]["id"]
    offer = {
        "code": "coupon",
        "name": "Wash coupon",
        "kind": "COUPON",
        "pointsPrice": 800,
        "settlementFen": 900,
        "couponTemplateId": tid,
    }
    p = await active(world, world.a, world.b, offers=[offer])
    oid = p["terms"]["offers"][0]["id"]
    membership, phone, token = await member_with_points(world, 2_000)
    # Not a member of B yet: refused, nothing written.
    out = await redeem(world, world.b.store, await code_for(world, membership, token), oid)
    assert out["userErrors"] == [{"code": "NOT_AVAILABLE", "field": "code"}]
    enrolled = await world.api.mutate("enrollMember", {"phone": phone}, world.b.store, "membership { id }")
    out = await redeem(world, world.b.store, await code_for(world, membership, token), oid)
    assert out["userErrors"] == [] and len(out["couponIds"]) == 1
    coupons = await world.api.data(
        "query($id: ID!) { node(id: $id) { ... on Membership { coupons(first: 5) { edges { node { id status } } } } } }",
        {"id": enrolled["membership"]["id"]},
        world.b.hq,
    )
    assert [e["node"] for e in coupons["node"]["coupons"]["edges"]] == [
        {"id": out["couponIds"][0], "status": "AVAILABLE"}
    ]
    # A void takes the coupon back with everything else.
    voided = await void(world, world.b.store, out["redemption"]["id"])
    assert voided["userErrors"] == []
    assert await world.balance(membership) == 2_000
    await audit_clean(world)
    assert REDEMPTION


async def test_a_pass_offer_issues_the_offer_brands_pass_and_a_void_takes_it_back(world: World) -> None:
    product = await world.api.mutate(
        "createPassProduct",
        {"brandId": world.b.id, "code": key("w5"), "name": "5 washes", "uses": 5, "validDays": 90},
        world.b.hq,
        "product { id }",
    )
    assert product["userErrors"] == [], product
    pid = product["product"]["id"]
    offer = {
        "code": "pass5",
        "name": "5 washes",
        "kind": "PASS",
        "pointsPrice": 5_000,
        "settlementFen": 6_000,
        "passProductId": pid,
    }
    p = await active(world, world.a, world.b, offers=[offer])
    oid = p["terms"]["offers"][0]["id"]
    membership, phone, token = await member_with_points(world, 5_000)
    enrolled = await world.api.mutate("enrollMember", {"phone": phone}, world.b.store, "membership { id }")
    b_membership = enrolled["membership"]["id"]
    out = await redeem(world, world.b.store, await code_for(world, membership, token), oid)
    assert out["userErrors"] == [] and out["redemption"]["settlementFen"] == 6_000, out
    passes = (
        "query($id: ID!) { node(id: $id) { ... on Membership {"
        " servicePasses(first: 5) { edges { node { usesLeft } } } } } }"
    )
    held = await world.api.data(passes, {"id": b_membership}, world.b.hq)
    assert [e["node"]["usesLeft"] for e in held["node"]["servicePasses"]["edges"]] == [5]
    voided = await void(world, world.b.store, out["redemption"]["id"])
    assert voided["userErrors"] == [], voided
    held = await world.api.data(passes, {"id": b_membership}, world.b.hq)
    assert [e["node"]["usesLeft"] for e in held["node"]["servicePasses"]["edges"]] == [0]
    assert await world.balance(membership) == 5_000
    # A pass offer names a pass product of the offer brand.
    bad = {**offer, "passProductId": None}
    out = await world.api.mutate(
        "proposePartnership",
        {
            "name": "x",
            "pointsBrandId": world.a.id,
            "offerBrandId": world.b.id,
            "terms": wash_terms(offers=[bad]),
        },
        world.a.hq,
        PARTNERSHIP,
    )
    assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": "offers.0.passProductId"}]
    await audit_clean(world)

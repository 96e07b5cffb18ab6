"""Franchise clearing: points earned at store X and redeemed at store Y, settled between the stores at
the brand's point value, exactly once, as the brand chose to fund them; statements match the ledger."""

from __future__ import annotations

import asyncio

import pytest

from hub.models import Account, ClearingEntry, LedgerTransaction
from tests.helpers import Api, Brand, World, make_brand, make_world, new_phone, pk
from tests.partnerships.support import audit_clean, key

STATEMENT = """query($b: ID!, $s: ID) { clearingStatement(brandId: $b, storeId: $s) {
  storeId pointsIssued pointsAccepted owesFen owedFen netFen } }"""


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def fresh_brand(world: World) -> Brand:
    """A brand of its own per test (clearing works brand-wide): 1 point per ¥1, 100 points = ¥1."""
    return await make_brand(world.api, world.platform, key("Chain"))


async def member_at(world: World, brand: Brand, store: str, points: int) -> str:
    out = await world.api.mutate("enrollMember", {"phone": new_phone()}, store, "membership { id }")
    membership = out["membership"]["id"]
    earned = await world.api.mutate(
        "recordPurchase",
        {"membershipId": membership, "amountFen": points * 100, "idempotencyKey": key("earn")},
        store,
        "points",
    )
    assert earned["userErrors"] == [], earned
    return str(membership)


async def redeem_at(world: World, store: str, membership: str, points: int) -> None:
    out = await world.api.mutate(
        "redeemPoints",
        {"membershipId": membership, "points": points, "reason": "gift", "idempotencyKey": key("r")},
        store,
        "points",
    )
    assert out["userErrors"] == [], out


async def set_policy(world: World, brand: Brand, funding: str, share: int = 5_000) -> dict:
    input = {"brandId": brand.id, "funding": funding, "issuerShareBasisPoints": share}
    return await world.api.mutate(
        "setClearingPolicy", input, brand.hq, "policy { funding issuerShareBasisPoints }"
    )


async def run(world: World, brand: Brand) -> int:
    out = await world.api.mutate("runClearing", {"brandId": brand.id}, brand.hq, "cleared")
    assert out["userErrors"] == [], out
    return int(out["cleared"])


async def statement(world: World, brand: Brand, token: str, store: str | None = None) -> dict[str, dict]:
    data = await world.api.data(STATEMENT, {"b": brand.id, "s": store}, token)
    return {row["storeId"]: row for row in data["clearingStatement"]}


async def test_points_issued_at_x_and_redeemed_at_y_are_cleared_once(world: World) -> None:
    brand = await fresh_brand(world)
    x, y = brand.store_id, brand.store2_id
    m = await member_at(world, brand, brand.store, 1_000)  # earned at X
    await redeem_at(world, brand.store2, m, 600)  # redeemed at Y
    await redeem_at(world, brand.store, m, 100)  # redeemed where it was earned: nothing to clear
    # Without a policy nothing is cleared.
    assert await run(world, brand) == 0
    assert (await set_policy(world, brand, "ISSUING_STORE"))["policy"] == {
        "funding": "ISSUING_STORE",
        "issuerShareBasisPoints": 10_000,
    }
    # Two runs at once and one after: the redemption is cleared once.
    counts = await asyncio.gather(run(world, brand), run(world, brand))
    assert await run(world, brand) == 0
    assert sum(counts) >= 1
    assert await ClearingEntry.filter(brand_id=pk(brand.id)).count() == 1
    assert await LedgerTransaction.filter(brand_id=pk(brand.id), kind="clearing").count() == 1
    rows = await statement(world, brand, brand.hq)
    # 600 points at 100 points = ¥1: ¥6 (600 fen) from X to Y.
    assert rows[x] == {
        "storeId": x,
        "pointsIssued": 600,
        "pointsAccepted": 0,
        "owesFen": 600,
        "owedFen": 0,
        "netFen": -600,
    }
    assert rows[y]["pointsAccepted"] == 600 and rows[y]["owedFen"] == 600 and rows[y]["netFen"] == 600
    # The statement matches the ledger: the stores' payable and receivable.
    payable = await Account.get(brand_id=pk(brand.id), store_id=pk(x), kind="payable")
    receivable = await Account.get(brand_id=pk(brand.id), store_id=pk(y), kind="receivable")
    assert (payable.balance, receivable.balance) == (-600, 600)
    # A store sees its own line only, whatever it asks for.
    own = await statement(world, brand, brand.store2, store=x)
    assert list(own) == [y]
    await audit_clean(world, brand)


async def test_hq_or_a_split_funds_the_points(world: World) -> None:
    brand = await fresh_brand(world)
    x, y = brand.store_id, brand.store2_id
    m = await member_at(world, brand, brand.store, 1_000)
    assert (await set_policy(world, brand, "SPLIT", 2_500))["policy"]["issuerShareBasisPoints"] == 2_500
    await redeem_at(world, brand.store2, m, 400)
    assert await run(world, brand) == 1
    rows = await statement(world, brand, brand.hq)
    assert (rows[x]["owesFen"], rows[y]["owedFen"]) == (100, 400)  # X pays a quarter, HQ the rest
    clearing = await Account.get(brand_id=pk(brand.id), kind="clearing", asset="settlement")
    assert clearing.balance == -300
    assert (await set_policy(world, brand, "HQ"))["policy"] == {"funding": "HQ", "issuerShareBasisPoints": 0}
    await redeem_at(world, brand.store2, m, 200)
    assert await run(world, brand) == 1
    rows = await statement(world, brand, brand.hq)
    assert (rows[x]["owesFen"], rows[y]["owedFen"], rows[x]["pointsIssued"]) == (100, 600, 600)
    bad = await set_policy(world, brand, "SPLIT", 10_000)
    assert bad["userErrors"] == [{"code": "INVALID_INPUT", "field": "issuerShareBasisPoints"}]
    await audit_clean(world, brand)


async def test_the_audit_sees_an_entry_that_disagrees_with_the_ledger(world: World) -> None:
    brand = await fresh_brand(world)
    m = await member_at(world, brand, brand.store, 500)
    await set_policy(world, brand, "ISSUING_STORE")
    await redeem_at(world, brand.store2, m, 500)
    assert await run(world, brand) == 1
    entry = await ClearingEntry.get(brand_id=pk(brand.id))
    await ClearingEntry.filter(id=entry.id).update(fen=entry.fen + 1)
    try:
        report = await world.audit(brand)
        assert "CLEARING_ENTRY_MISMATCH" in {v["check"] for v in report["violations"]}
    finally:
        await ClearingEntry.filter(id=entry.id).update(fen=entry.fen)
    await audit_clean(world, brand)

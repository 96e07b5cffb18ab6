"""Service passes: products, sales (cash, stored value, points), visits exactly once, expiry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.models import Brand, LedgerTransaction, Lot, PassProduct
from hub.resolvers import passes as service
from tests.helpers import Api, World, make_world, pk, tamper
from tests.spending.support import assert_audit_clean, key, top_up, wallet

PRODUCT = "product { id code name uses validDays priceFen pointsPrice active } created"
PASS = "servicePass { id status uses usesLeft expiresAt product { code } } transaction { id kind details }"


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def product(world: World, **fields: Any) -> dict[str, Any]:
    """HQ defines a pass (default: 3 washes, 30 days, ¥99 or 5,000 points)."""
    input = {
        "brandId": world.a.id,
        "code": key("wash"),
        "name": "3 washes",
        "uses": 3,
        "validDays": 30,
        "priceFen": 9_900,
        "pointsPrice": 5_000,
        **fields,
    }
    out = await world.api.mutate("createPassProduct", input, world.a.hq, PRODUCT)
    assert out["userErrors"] == [], out
    return dict(out["product"])


async def buy(
    world: World,
    product_id: str,
    membership: str,
    payment: str = "CASH",
    token: str | None = None,
    k: str | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    input = {
        "productId": product_id,
        "membershipId": membership,
        "payment": payment,
        "idempotencyKey": k or key("sale"),
    }
    if payment == "CASH":
        input["paymentReference"] = reference or key("till")
    return await world.api.mutate("buyServicePass", input, token or world.a.store, PASS)


async def use(world: World, pass_id: str, k: str | None = None, token: str | None = None) -> dict[str, Any]:
    input = {"passId": pass_id, "idempotencyKey": k or key("visit")}
    return await world.api.mutate("useServicePass", input, token or world.a.store, PASS)


async def held(world: World, membership: str, token: str, status: str | None = None) -> list[dict]:
    query = (
        "query($id: ID!, $s: ServicePassStatus) { node(id: $id) { ... on Membership {"
        " servicePasses(status: $s, first: 50) { edges { node { id status usesLeft expiresAt } } } } } }"
    )
    data = await world.api.data(query, {"id": membership, "s": status}, token)
    return [e["node"] for e in data["node"]["servicePasses"]["edges"]]


async def test_hq_defines_a_product_once_and_bad_terms_write_nothing(world: World) -> None:
    input = {
        "brandId": world.a.id,
        "code": key("p"),
        "name": "10 washes",
        "uses": 10,
        "validDays": 180,
        "priceFen": 20_000,
    }
    first = await world.api.mutate("createPassProduct", input, world.a.hq, PRODUCT)
    assert first["userErrors"] == [] and first["created"] is True and first["product"]["pointsPrice"] is None
    again = await world.api.mutate("createPassProduct", input, world.a.hq, PRODUCT)
    assert again["created"] is False and again["product"]["id"] == first["product"]["id"]
    taken = await world.api.mutate("createPassProduct", {**input, "uses": 9}, world.a.hq, PRODUCT)
    assert taken["userErrors"] == [{"code": "ALREADY_EXISTS", "field": "code"}]
    before = await PassProduct.all().count()
    for bad, code, field in (
        ({"uses": 0}, "INVALID_INPUT", "uses"),
        ({"uses": 1_001}, "INVALID_INPUT", "uses"),
        ({"validDays": 0}, "INVALID_INPUT", "validDays"),
        ({"priceFen": 0}, "INVALID_INPUT", "priceFen"),
        ({"pointsPrice": -1}, "INVALID_INPUT", "pointsPrice"),
        ({"code": "BAD CODE"}, "INVALID_INPUT", "code"),
        ({"brandId": world.b.id}, "NOT_FOUND", "brandId"),
    ):
        out = await world.api.mutate(
            "createPassProduct", {**input, "code": key("bad"), **bad}, world.a.hq, PRODUCT
        )
        assert out["userErrors"] == [{"code": code, "field": field}], bad
    assert await PassProduct.all().count() == before


async def test_a_store_sells_a_pass_and_each_visit_uses_one_once(world: World) -> None:
    p = await product(world)
    membership, _, token = await world.enroll()
    k = key("sale")
    sold = await buy(world, p["id"], membership, k=k, reference="TILL-77")
    assert sold["userErrors"] == [] and sold["transaction"]["kind"] == "PASS_SALE"
    sp = sold["servicePass"]
    assert (sp["status"], sp["uses"], sp["usesLeft"]) == ("ACTIVE", 3, 3)
    assert sold["transaction"]["details"]["paymentReference"] == "TILL-77"
    assert sold["transaction"]["details"]["priceFen"] == 9_900
    # Valid through the end of the brand-local (Shanghai) day 30 days on.
    expires = datetime.fromisoformat(sp["expiresAt"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert expires.date() == datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=31)
    assert expires.time().isoformat() == "00:00:00"
    assert await buy(world, p["id"], membership, k=k, reference="TILL-77") == sold
    conflict = await buy(world, p["id"], membership, k=k, reference="TILL-78")
    assert conflict["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]

    # A visit at any store of the brand; the same visit again answers the same.
    visit = key("visit")
    first = await use(world, sp["id"], visit, world.a.store2)
    assert first["userErrors"] == [] and first["servicePass"]["usesLeft"] == 2
    assert first["transaction"]["kind"] == "PASS_VISIT"
    again = await use(world, sp["id"], visit, world.a.store2)
    assert again["transaction"]["id"] == first["transaction"]["id"]
    assert (await use(world, sp["id"]))["servicePass"]["usesLeft"] == 1
    # The member and the store see what is left; another brand's store does not find it.
    assert await held(world, membership, token) == [
        {"id": sp["id"], "status": "ACTIVE", "usesLeft": 1, "expiresAt": sp["expiresAt"]}
    ]
    node = "query($id: ID!) { node(id: $id) { ... on ServicePass { usesLeft } } }"
    assert (await world.api.data(node, {"id": sp["id"]}, world.a.store))["node"] == {"usesLeft": 1}
    assert (await world.api.data(node, {"id": sp["id"]}, world.b.store))["node"] is None
    foreign = await use(world, sp["id"], token=world.b.store)
    assert foreign["userErrors"] == [{"code": "NOT_FOUND", "field": "passId"}]
    assert (await use(world, sp["id"]))["servicePass"]["status"] == "USED_UP"
    used_up = await use(world, sp["id"])
    assert used_up["userErrors"] == [{"code": "PASS_USED_UP", "field": "passId"}]
    assert [x["status"] for x in await held(world, membership, token, "USED_UP")] == ["USED_UP"]
    await assert_audit_clean(world)


async def test_members_buy_with_stored_value_or_points(world: World) -> None:
    p = await product(world)
    membership, _, token = await world.enroll()
    assert (await top_up(world, membership, 10_000))["userErrors"] == []
    with_value = await buy(world, p["id"], membership, "STORED_VALUE", token)
    assert with_value["userErrors"] == [] and with_value["transaction"]["details"]["storedValueFen"] == 9_900
    assert (await wallet(world, membership))["totalFen"] == 100
    poor = await buy(world, p["id"], membership, "STORED_VALUE", token)
    assert poor["userErrors"] == [{"code": "INSUFFICIENT_BALANCE", "field": "storedValueFen"}]
    await world.earn(membership, 600_000, key("earn"))  # 6,000 points
    with_points = await buy(world, p["id"], membership, "POINTS", token)
    assert with_points["userErrors"] == [] and with_points["transaction"]["details"]["pointsPaid"] == 5_000
    assert await world.balance(membership) == 1_000
    # A member cannot record cash; a product not sold for points is refused; nothing written.
    before = await LedgerTransaction.all().count()
    cash = await buy(world, p["id"], membership, "CASH", token)
    assert cash["userErrors"] == [{"code": "INVALID_INPUT", "field": "payment"}]
    money_only = await product(world, pointsPrice=None)
    out = await buy(world, money_only["id"], membership, "POINTS", token)
    assert out["userErrors"] == [{"code": "NOT_AVAILABLE", "field": "payment"}]
    stopped = await product(world)
    await world.api.mutate(
        "updatePassProduct", {"productId": stopped["id"], "active": False}, world.a.hq, PRODUCT
    )
    out = await buy(world, stopped["id"], membership)
    assert out["userErrors"] == [{"code": "NOT_AVAILABLE", "field": "productId"}]
    other = await world.api.mutate(
        "createPassProduct",
        {"brandId": world.b.id, "code": key("b"), "name": "B", "uses": 1, "validDays": 1, "priceFen": 1},
        world.b.hq,
        PRODUCT,
    )
    out = await buy(world, other["product"]["id"], membership)
    assert out["userErrors"] == [{"code": "NOT_FOUND", "field": "productId"}]
    out = await buy(world, p["id"], membership, "CASH", reference=" ")
    assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": "paymentReference"}]
    assert await LedgerTransaction.all().count() == before
    assert len(await held(world, membership, token, "ACTIVE")) == 2
    await assert_audit_clean(world)


async def test_concurrent_visits_on_the_last_use_one_succeeds(world: World) -> None:
    p = await product(world, uses=1)
    membership, _, token = await world.enroll()
    sp = (await buy(world, p["id"], membership))["servicePass"]
    tills = [world.a.store, world.a.store2] * 10
    results = await asyncio.gather(*(use(world, sp["id"], token=t) for t in tills))
    codes = sorted(r["userErrors"][0]["code"] if r["userErrors"] else "OK" for r in results)
    assert codes == ["OK"] + ["PASS_USED_UP"] * 19
    assert (await held(world, membership, token))[0]["usesLeft"] == 0
    await assert_audit_clean(world)


async def test_a_pass_past_its_end_cannot_be_used_and_the_expiry_job_takes_what_is_left(world: World) -> None:
    p = await product(world, uses=5)
    membership, _, token = await world.enroll()
    sp = (await buy(world, p["id"], membership))["servicePass"]
    assert (await use(world, sp["id"]))["userErrors"] == []
    await tamper(f"UPDATE lot SET expires_at = '2020-01-01 00:00:00+00:00' WHERE id = {pk(sp['id'])}")
    out = await use(world, sp["id"])
    assert out["userErrors"] == [{"code": "PASS_EXPIRED", "field": "passId"}]
    assert await held(world, membership, token, "EXPIRED") == [
        {"id": sp["id"], "status": "EXPIRED", "usesLeft": 0, "expiresAt": "2020-01-01T00:00:00+00:00"}
    ]
    assert await held(world, membership, token, "ACTIVE") == []
    await assert_audit_clean(world)


def test_a_pass_runs_through_the_brand_local_day_its_validity_ends() -> None:
    brand = Brand(id=1, timezone="Asia/Shanghai")
    sold = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)  # 01:30 on 2 March in Shanghai
    month = PassProduct(brand_id=1, valid_days=30)
    assert service.pass_expiry(month, brand, sold) == datetime(2026, 4, 1, 16, 0, tzinfo=UTC)
    berlin = Brand(id=1, timezone="Europe/Berlin")  # the DST change on 29 March
    week = PassProduct(brand_id=1, valid_days=7)
    assert service.pass_expiry(week, berlin, datetime(2026, 3, 24, 12, tzinfo=UTC)) == datetime(
        2026, 3, 31, 22, 0, tzinfo=UTC
    )


async def test_the_audit_sees_a_pass_that_disagrees_with_its_product(world: World) -> None:
    brand = await make_world(world.api)
    p = await product(brand, uses=4)
    membership, _, _ = await brand.enroll()
    sp = (await buy(brand, p["id"], membership))["servicePass"]
    await assert_audit_clean(brand)
    await tamper(f"UPDATE pass_product SET uses = 6 WHERE id = {pk(p['id'])}")
    report = await brand.audit()
    assert [v["check"] for v in report["violations"]] == ["PASS_SALE_USES"]
    await tamper(f"UPDATE pass_product SET uses = 4 WHERE id = {pk(p['id'])}")
    assert await Lot.filter(id=pk(sp["id"])).exists()
    await assert_audit_clean(brand)

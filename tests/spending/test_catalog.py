"""Gift catalog: items, orders (stock and limits exact under concurrency), collecting, cancelling."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.models import GiftItem, GiftOrder, LedgerTransaction
from tests.helpers import Api, World, make_world, pk, tamper
from tests.spending.support import assert_audit_clean, key

ITEM = "item { id code name pointsPrice cashFen stock limitPerMember limitPeriod storeIds active ordered }"
ORDER = (
    "order { id status points cashFen store { id } item { code } cancelReason"
    " transaction { id kind } cancelTransaction { id kind } }"
    " transaction { id kind } pointsBalance"
)


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def item(world: World, **fields: Any) -> dict[str, Any]:
    """HQ adds an item (default: a mug for 200 points + ¥9.90, unlimited)."""
    input = {
        "brandId": world.a.id,
        "code": key("mug"),
        "name": "Mug",
        "pointsPrice": 200,
        "cashFen": 990,
        "imageUrl": "https://img.example/mug.png",
        **fields,
    }
    out = await world.api.mutate("createGiftItem", input, world.a.hq, f"{ITEM} created")
    assert out["userErrors"] == [], out
    return dict(out["item"])


async def member_with_points(world: World, points: int) -> tuple[str, str]:
    membership, _, token = await world.enroll()
    await world.earn(membership, points * 100, key("earn"))
    assert await world.balance(membership) == points
    return membership, token


async def order(
    world: World, item_id: str, membership: str, token: str, store: str | None = None, k: str | None = None
) -> dict[str, Any]:
    input = {
        "itemId": item_id,
        "membershipId": membership,
        "storeId": store or world.a.store_id,
        "idempotencyKey": k or key("order"),
    }
    return await world.api.mutate("orderGift", input, token, ORDER)


async def writes() -> tuple[int, int]:
    return await GiftOrder.all().count(), await LedgerTransaction.all().count()


async def test_hq_adds_an_item_once_and_bad_terms_write_nothing(world: World) -> None:
    code = key("tote")
    input = {
        "brandId": world.a.id,
        "code": code,
        "name": "Tote bag",
        "pointsPrice": 2_000,
        "cashFen": 990,
        "stock": 10,
        "limitPerMember": 1,
        "limitPeriod": "MONTH",
        "storeIds": [world.a.store_id],
    }
    first = await world.api.mutate("createGiftItem", input, world.a.hq, f"{ITEM} created")
    assert first["userErrors"] == [] and first["created"] is True
    made = first["item"]
    assert (made["pointsPrice"], made["cashFen"], made["stock"], made["limitPeriod"]) == (
        2_000,
        990,
        10,
        "MONTH",
    )
    assert made["storeIds"] == [world.a.store_id] and made["ordered"] == 0
    again = await world.api.mutate("createGiftItem", input, world.a.hq, f"{ITEM} created")
    assert again["created"] is False and again["item"]["id"] == made["id"]
    taken = await world.api.mutate("createGiftItem", {**input, "pointsPrice": 1}, world.a.hq, "created")
    assert taken["userErrors"] == [{"code": "ALREADY_EXISTS", "field": "code"}]

    before = await GiftItem.all().count()
    for bad, code_, field in (
        ({"pointsPrice": 0}, "INVALID_INPUT", "pointsPrice"),
        ({"pointsPrice": -5}, "INVALID_INPUT", "pointsPrice"),
        ({"cashFen": -1}, "INVALID_INPUT", "cashFen"),
        ({"stock": -1}, "INVALID_INPUT", "stock"),
        ({"limitPerMember": 0}, "INVALID_INPUT", "limitPerMember"),
        ({"imageUrl": "javascript:alert(1)"}, "INVALID_INPUT", "imageUrl"),
        ({"code": "Not A Code"}, "INVALID_INPUT", "code"),
        ({"name": " "}, "INVALID_INPUT", "name"),
        (
            {"validFrom": "2030-01-02T00:00:00+08:00", "validUntil": "2030-01-01T00:00:00+08:00"},
            "INVALID_INPUT",
            "validUntil",
        ),
        ({"validUntil": "2030-01-01T00:00:00"}, "INVALID_INPUT", "validUntil"),
        ({"storeIds": [world.b.store_id]}, "NOT_FOUND", "storeIds"),
        ({"brandId": world.b.id}, "NOT_FOUND", "brandId"),
    ):
        out = await world.api.mutate(
            "createGiftItem", {**input, "code": key("bad"), **bad}, world.a.hq, "created"
        )
        assert out["userErrors"] == [{"code": code_, "field": field}], bad
    assert await GiftItem.all().count() == before

    # Changes keep what is left out; bad ones change nothing.
    update = "updateGiftItem"
    out = await world.api.mutate(
        update, {"itemId": made["id"], "stock": None, "pointsPrice": 1_500}, world.a.hq, ITEM
    )
    assert out["userErrors"] == [] and (out["item"]["stock"], out["item"]["pointsPrice"]) == (None, 1_500)
    assert out["item"]["cashFen"] == 990 and out["item"]["limitPerMember"] == 1
    out = await world.api.mutate(update, {"itemId": made["id"], "cashFen": -3, "name": "X"}, world.a.hq, ITEM)
    assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": "cashFen"}]
    row = await GiftItem.get(id=pk(made["id"]))
    assert (row.name, row.cash_fen, row.points_price) == ("Tote bag", 990, 1_500)


async def test_a_member_orders_a_gift_once_and_its_store_hands_it_over(world: World) -> None:
    gift = await item(world, storeIds=[world.a.store_id, world.a.store2_id])
    membership, token = await member_with_points(world, 500)
    k = key("order")
    placed = await order(world, gift["id"], membership, token, world.a.store2_id, k)
    assert placed["userErrors"] == [] and placed["pointsBalance"] == 300
    o = placed["order"]
    assert (o["status"], o["points"], o["cashFen"], o["store"]["id"]) == (
        "PLACED",
        200,
        990,
        world.a.store2_id,
    )
    assert placed["transaction"]["kind"] == "GIFT_ORDER" and o["transaction"] == placed["transaction"]

    # A retry answers the first order; the same key for another request is refused.
    assert await order(world, gift["id"], membership, token, world.a.store2_id, k) == placed
    conflict = await order(world, gift["id"], membership, token, world.a.store_id, k)
    assert conflict["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    assert (
        await world.balance(membership) == 300
        and await GiftOrder.filter(membership_id=pk(membership)).count() == 1
    )

    # HQ lists the brand's orders, each store those collected at it; the member its own.
    listing = (
        "query($s: ID, $st: GiftOrderStatus) { giftOrders(storeId: $s, status: $st, first: 100)"
        " { edges { node { id status } } } }"
    )

    async def listed(token_: str, store: str | None = None, status: str | None = None) -> list[str]:
        data = await world.api.data(listing, {"s": store, "st": status}, token_)
        return [e["node"]["id"] for e in data["giftOrders"]["edges"]]

    assert o["id"] in await listed(world.a.hq) and o["id"] in await listed(world.a.hq, world.a.store2_id)
    assert o["id"] not in await listed(world.a.hq, world.a.store_id)
    assert o["id"] in await listed(world.a.store2) and o["id"] not in await listed(world.a.store)
    assert o["id"] not in await listed(world.b.hq)
    mine = await world.api.data(
        "query($id: ID!) { node(id: $id) { ... on Membership { giftOrders { edges { node { id status } } } } } }",
        {"id": membership},
        token,
    )
    assert mine["node"]["giftOrders"]["edges"] == [{"node": {"id": o["id"], "status": "PLACED"}}]

    # Only the collecting store hands it over; again is the same answer; then it cannot be cancelled.
    fulfil = "fulfillGiftOrder"
    fields = "order { status fulfilledAt }"
    wrong = await world.api.mutate(fulfil, {"orderId": o["id"]}, world.a.store, fields)
    assert wrong["userErrors"] == [{"code": "NOT_FOUND", "field": "orderId"}]
    done = await world.api.mutate(fulfil, {"orderId": o["id"]}, world.a.store2, fields)
    assert done["userErrors"] == [] and done["order"]["status"] == "FULFILLED"
    assert await world.api.mutate(fulfil, {"orderId": o["id"]}, world.a.store2, fields) == done
    late = await world.api.mutate("cancelGiftOrder", {"orderId": o["id"]}, token, ORDER)
    assert late["userErrors"] == [{"code": "ORDER_CLOSED", "field": "orderId"}]
    assert o["id"] in await listed(world.a.hq, None, "FULFILLED")
    assert o["id"] not in await listed(world.a.hq, None, "PLACED")
    assert await world.balance(membership) == 300
    await assert_audit_clean(world)


async def test_a_cancelled_order_returns_its_points_once(world: World) -> None:
    gift = await item(world, stock=1, limitPerMember=1, limitPeriod="DAY")
    membership, token = await member_with_points(world, 500)
    placed = await order(world, gift["id"], membership, token)
    assert placed["userErrors"] == [] and placed["pointsBalance"] == 300
    order_id = placed["order"]["id"]
    # Ten cancellations at once (member, store, HQ): the points come back once.
    callers = [token, world.a.store, world.a.hq] * 3 + [token]
    cancels = await asyncio.gather(
        *(
            world.api.mutate("cancelGiftOrder", {"orderId": order_id, "reason": "changed mind"}, t, ORDER)
            for t in callers
        )
    )
    assert all(c["userErrors"] == [] for c in cancels)
    assert {c["order"]["status"] for c in cancels} == {"CANCELLED"}
    assert {c["transaction"]["id"] for c in cancels} == {cancels[0]["order"]["cancelTransaction"]["id"]}
    assert cancels[0]["transaction"]["kind"] == "GIFT_ORDER_CANCEL"
    assert await world.balance(membership) == 500
    # The stock and the member's daily limit came back with it; a cancelled order cannot be handed over.
    again = await order(world, gift["id"], membership, token)
    assert again["userErrors"] == [] and again["pointsBalance"] == 300
    closed = await world.api.mutate("fulfillGiftOrder", {"orderId": order_id}, world.a.store, "order { id }")
    assert closed["userErrors"] == [{"code": "ORDER_CLOSED", "field": "orderId"}]
    # Another brand, or another member, cannot cancel it: not found.
    _, _, other = await world.enroll()
    for t in (world.b.hq, world.b.store, other):
        out = await world.api.mutate("cancelGiftOrder", {"orderId": again["order"]["id"]}, t, ORDER)
        assert out["userErrors"] == [{"code": "NOT_FOUND", "field": "orderId"}]
    await assert_audit_clean(world)


async def test_fifty_concurrent_orders_for_the_last_gift_sell_exactly_one(world: World) -> None:
    gift = await item(world, stock=1)
    members = [await member_with_points(world, 200) for _ in range(50)]
    results = await asyncio.gather(*(order(world, gift["id"], m, t) for m, t in members))
    won = [r for r in results if not r["userErrors"]]
    lost = [r["userErrors"] for r in results if r["userErrors"]]
    assert len(won) == 1 and lost == [[{"code": "NOT_AVAILABLE", "field": "itemId"}]] * 49
    balances = sorted([await world.balance(m) for m, _ in members])
    assert balances == [0] + [200] * 49
    assert await GiftOrder.filter(item_id=pk(gift["id"])).count() == 1
    ordered = "query($id: ID!) { node(id: $id) { ... on GiftItem { ordered } } }"
    assert (await world.api.data(ordered, {"id": gift["id"]}, world.a.hq))["node"]["ordered"] == 1
    # More stock lets another through.
    await world.api.mutate("updateGiftItem", {"itemId": gift["id"], "stock": 2}, world.a.hq, "item { id }")
    loser = next((m, t) for (m, t), r in zip(members, results, strict=True) if r["userErrors"])
    assert (await order(world, gift["id"], *loser))["userErrors"] == []
    assert (await world.api.data(ordered, {"id": gift["id"]}, world.a.hq))["node"]["ordered"] == 2
    await assert_audit_clean(world)


async def test_the_per_member_limit_holds_under_concurrent_orders(world: World) -> None:
    gift = await item(world, pointsPrice=10, limitPerMember=2, limitPeriod="DAY")
    membership, token = await member_with_points(world, 500)
    results = await asyncio.gather(*(order(world, gift["id"], membership, token) for _ in range(10)))
    codes = sorted(r["userErrors"][0]["code"] if r["userErrors"] else "OK" for r in results)
    assert codes == ["LIMIT_REACHED"] * 8 + ["OK"] * 2
    assert await world.balance(membership) == 480
    await assert_audit_clean(world)


async def test_bad_orders_write_nothing(world: World) -> None:
    gift = await item(world, storeIds=[world.a.store_id])
    membership, token = await member_with_points(world, 150)
    foreign = await world.api.mutate(
        "createGiftItem",
        {"brandId": world.b.id, "code": key("b"), "name": "B", "pointsPrice": 1},
        world.b.hq,
        "item { id }",
    )
    stopped = await item(world)
    await world.api.mutate(
        "updateGiftItem", {"itemId": stopped["id"], "active": False}, world.a.hq, "item { id }"
    )
    over = await item(world, validUntil="2020-01-01T00:00:00+08:00")
    early = await item(world, validFrom="2099-01-01T00:00:00+08:00")
    before = await writes()
    for item_id, store, want in (
        (gift["id"], None, ("INSUFFICIENT_POINTS", "points")),  # 200 > 150
        ((await item(world, pointsPrice=100))["id"], world.a.store2_id, None),  # placed: the control
        (foreign["item"]["id"], None, ("NOT_FOUND", "itemId")),
        (stopped["id"], None, ("NOT_AVAILABLE", "itemId")),
        (over["id"], None, ("NOT_AVAILABLE", "itemId")),
        (early["id"], None, ("NOT_AVAILABLE", "itemId")),
        (gift["id"], world.a.store2_id, ("NOT_FOUND", "storeId")),  # not collected there
        (gift["id"], world.b.store_id, ("NOT_FOUND", "storeId")),
        ("R2lmdEl0ZW06OTk5OTk5OQ==", None, ("NOT_FOUND", "itemId")),  # GiftItem:9999999
    ):
        out = await order(world, item_id, membership, token, store)
        if want is None:
            assert out["userErrors"] == [], out
            before = (before[0] + 1, before[1] + 1)
            continue
        assert out["userErrors"] == [{"code": want[0], "field": want[1]}], (item_id, store)
    # A member must say where it collects; a store collects at itself by default.
    out = await world.api.mutate(
        "orderGift", {"itemId": gift["id"], "membershipId": membership, "idempotencyKey": key()}, token, ORDER
    )
    assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": "storeId"}]
    assert await writes() == before and await world.balance(membership) == 50
    await assert_audit_clean(world)


async def test_the_audit_sees_orders_that_disagree_with_the_ledger(world: World) -> None:
    brand = await make_world(world.api)
    gift = await item(brand, stock=5)
    membership, token = await member_with_points(brand, 500)
    placed = await order(brand, gift["id"], membership, token)
    assert placed["userErrors"] == []
    await assert_audit_clean(brand)
    await tamper(f"UPDATE ledger_counter SET value = 3 WHERE key = 'gift:stock:i{pk(gift['id'])}'")
    await tamper(f"UPDATE gift_order SET points = 1 WHERE id = {pk(placed['order']['id'])}")
    report = await brand.audit()
    assert sorted(v["check"] for v in report["violations"]) == ["GIFT_ORDER_POINTS", "GIFT_STOCK_COUNT"]
    await tamper(f"UPDATE ledger_counter SET value = 1 WHERE key = 'gift:stock:i{pk(gift['id'])}'")
    await tamper(
        f"UPDATE gift_order SET points = 200, status = 'cancelled' WHERE id = {pk(placed['order']['id'])}"
    )
    report = await brand.audit()
    assert [v["check"] for v in report["violations"]] == ["GIFT_ORDER_NOT_RETURNED"]
    # Cancelling again completes what a crash left half done.
    out = await brand.api.mutate("cancelGiftOrder", {"orderId": placed["order"]["id"]}, token, ORDER)
    assert out["userErrors"] == [] and out["pointsBalance"] == 500
    await assert_audit_clean(brand)

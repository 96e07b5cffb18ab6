"""The HQ member list (masked phones, filters, orders, keyset pages in a constant number of statements),
member counts by tier, top members and cohorts, on both backends."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.models import Account, Membership
from hub.resolvers import report_members
from tests.helpers import Api, World, make_brand, make_world, new_phone, pk
from tests.reports.support import StatementCounter, key

ENTRY = (
    "phone tier points pendingPoints lifetimeSpendFen lastPurchaseAt enrolledAt"
    " lastPurchaseStore { id name } joinStore { id } membership { id }"
)
LIST = (
    "query($b: ID!, $n: Int!, $a: String, $o: MemberListOrder! = NEWEST, $f: MemberListFilter) {"
    " reports(brandId: $b) { memberList(first: $n, after: $a, orderBy: $o, filter: $f) {"
    f" edges {{ cursor node {{ {ENTRY} }} }} pageInfo {{ hasNextPage hasPreviousPage endCursor }} }} }} }}"
)
MEMBERS = 130


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


@pytest.fixture(scope="module")
async def crowd(world: World) -> dict[str, Any]:
    """A brand of its own with 130 members: every third bought at store 1 or 2, some are gold."""
    brand = await make_brand(world.api, world.platform, "Crowd")
    members: list[str] = []
    for i in range(MEMBERS):
        store = brand.store if i % 2 else brand.store2
        out = await world.api.mutate("enrollMember", {"phone": new_phone()}, store, "membership { id }")
        members.append(out["membership"]["id"])
    for i, m in enumerate(members):
        if i % 3 == 0:
            store = brand.store if i % 2 else brand.store2
            input = {"membershipId": m, "amountFen": 100 * (i % 7 + 1), "idempotencyKey": key()}
            out = await world.api.mutate("recordPurchase", input, store, "points")
            assert out["userErrors"] == [], out
    gold = [pk(m) for i, m in enumerate(members) if i % 5 == 0]
    await Membership.filter(id__in=gold).update(tier="gold")
    return {"brand": brand, "members": members, "gold": gold}


async def _pages(api: Api, brand: Any, size: int, **variables: Any) -> list[dict]:
    nodes, after = [], None
    while True:
        data = await api.data(LIST, {"b": brand.id, "n": size, "a": after, **variables}, brand.hq)
        page = data["reports"]["memberList"]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None and bool(nodes))
        nodes.extend(e["node"] for e in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


async def test_pages_walk_every_member_once_in_each_order_with_masked_phones(
    world: World, crowd: dict
) -> None:
    brand = crowd["brand"]
    newest = await _pages(world.api, brand, 100)
    assert [n["membership"]["id"] for n in newest] == list(reversed(crowd["members"]))
    assert all(re.fullmatch(r"1\d\d\*\*\*\*\d{4}", n["phone"]) for n in newest)
    balances = {
        a.membership_id: a.balance
        for a in await Account.filter(brand_id=pk(brand.id), asset="points", kind="member")
    }
    by_points = await _pages(world.api, brand, 17, o="POINTS")
    expected = sorted(crowd["members"], key=lambda m: (balances.get(pk(m), 0), pk(m)), reverse=True)
    assert [n["membership"]["id"] for n in by_points] == expected
    assert [int(n["points"]) for n in by_points] == [balances.get(pk(m), 0) for m in expected]
    spend = await _pages(world.api, brand, 33, o="SPEND")
    assert [int(n["lifetimeSpendFen"]) for n in spend] == sorted(
        (int(n["lifetimeSpendFen"]) for n in newest), reverse=True
    )
    last = await _pages(world.api, brand, 40, o="LAST_PURCHASE")
    assert len(last) == MEMBERS and len({n["membership"]["id"] for n in last}) == MEMBERS
    bought = [n for n in last if n["lastPurchaseAt"]]
    assert len(bought) == len(range(0, MEMBERS, 3)) and last[: len(bought)] == bought
    assert [n["lastPurchaseAt"] for n in bought] == sorted(
        (n["lastPurchaseAt"] for n in bought), reverse=True
    )
    assert all(n["lastPurchaseStore"]["id"] in (brand.store_id, brand.store2_id) for n in bought)


async def test_a_key_with_the_personal_data_permission_sees_phones_in_full(world: World, crowd: dict) -> None:
    brand = crowd["brand"]
    key_input = {"role": "BRAND", "brandId": brand.id, "scopes": ["PERSONAL_DATA"]}
    created = await world.api.mutate("createApiKey", key_input, world.platform, "secret")
    assert created["userErrors"] == [], created
    full = await world.api.data(LIST, {"b": brand.id, "n": 5}, created["secret"])
    masked = await world.api.data(LIST, {"b": brand.id, "n": 5}, brand.hq)
    phones = [e["node"]["phone"] for e in full["reports"]["memberList"]["edges"]]
    assert all(re.fullmatch(r"\+861\d{10}", p) for p in phones), phones
    hidden = [e["node"]["phone"] for e in masked["reports"]["memberList"]["edges"]]
    assert [f"{p[3:6]}****{p[-4:]}" for p in phones] == hidden


def test_the_member_lists_phone_shortcut_says_what_hub_privacy_says() -> None:
    from hub.auth import Principal
    from hub.domain import KeyScope, Role
    from hub.privacy import phone_for
    from hub.schema.reports import shown_phone

    hq = Principal(Role.BRAND, brand_id=1)
    full = Principal(Role.BRAND, brand_id=1, scopes=frozenset({KeyScope.PERSONAL_DATA}))
    for digits in ("8613800138000", "8619912345678", "447911123456", "85291234567", "8610123"):
        for principal in (hq, full):
            assert shown_phone(principal, digits) == phone_for(principal, digits), digits


async def test_filters(world: World, crowd: dict) -> None:
    brand = crowd["brand"]
    gold = await _pages(world.api, brand, 100, f={"tier": "gold"})
    assert sorted(pk(n["membership"]["id"]) for n in gold) == sorted(crowd["gold"])
    at_store = await _pages(world.api, brand, 100, f={"lastPurchaseStoreId": brand.store_id})
    assert at_store and all(n["lastPurchaseStore"]["id"] == brand.store_id for n in at_store)
    joined = await _pages(world.api, brand, 100, f={"joinStoreId": brand.store2_id, "tier": "gold"})
    assert joined and all(n["joinStore"]["id"] == brand.store2_id and n["tier"] == "gold" for n in joined)
    rich = await _pages(world.api, brand, 100, f={"minPoints": 5})
    assert rich and all(int(n["points"]) >= 5 for n in rich)
    lapsed = await _pages(world.api, brand, 100, f={"lastPurchaseBefore": datetime.now(UTC).isoformat()})
    assert len(lapsed) == MEMBERS  # everyone: nobody bought after now
    recent = await _pages(
        world.api, brand, 100, f={"lastPurchaseAfter": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
    )
    assert len(recent) == len(range(0, MEMBERS, 3))
    # Bad input: a malformed cursor, a page too large, another brand's store (nothing matches).
    for variables, code in (({"a": "bm9wZQ=="}, "INVALID_INPUT"), ({"n": 101}, "INVALID_INPUT")):
        body = await world.api.gql(LIST, {"b": brand.id, "n": 10, **variables}, brand.hq)
        assert body["errors"][0]["extensions"]["code"] == code, body
    other = await _pages(world.api, brand, 100, f={"lastPurchaseStoreId": world.b.store_id})
    assert other == []
    body = await world.api.gql(LIST, {"b": brand.id, "n": 10}, world.a.hq)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_page_of_100_costs_what_a_page_of_10_costs(
    world: World, crowd: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    brand = crowd["brand"]
    counter = StatementCounter(monkeypatch)
    counts = {}
    await world.api.data(LIST, {"b": brand.id, "n": 1}, brand.hq)  # the key is looked up once, then cached
    for size in (10, 100):
        async with counter.counting():
            data = await world.api.data(LIST, {"b": brand.id, "n": size, "o": "LAST_PURCHASE"}, brand.hq)
        assert len(data["reports"]["memberList"]["edges"]) == size
        counts[size] = counter.count
    # The brand, the page, its stores and its memberships: one statement each.
    assert counts[10] == counts[100] and 0 < counts[100] <= 6, counts


async def test_member_counts_top_members_and_cohorts(world: World, crowd: dict) -> None:
    brand = crowd["brand"]
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    query = (
        "query($b: ID!, $f: Date!, $t: Date!) { reports(brandId: $b) {"
        " members(from: $f, to: $t, lapsedDays: 30) { total enrolled active lapsed"
        " byTier { tier total enrolled active lapsed } }"
        " bySpend: topMembers(by: SPEND, first: 3) { lifetimeSpendFen membership { id } }"
        " byPoints: topMembers(by: POINTS, first: 3) { points }"
        " cohorts(from: $f, to: $t, period: DAY) { start earned redeemed expired open } } }"
    )
    variables = {"b": brand.id, "f": (today - timedelta(1)).isoformat(), "t": today.isoformat()}
    data = (await world.api.data(query, variables, brand.hq))["reports"]
    members = data["members"]
    bought = len(range(0, MEMBERS, 3))
    assert (members["total"], members["enrolled"], members["active"], members["lapsed"]) == (
        MEMBERS,
        MEMBERS,
        bought,
        0,
    )
    gold = next(t for t in members["byTier"] if t["tier"] == "gold")
    assert gold["total"] == len(crowd["gold"]) and sum(t["total"] for t in members["byTier"]) == MEMBERS
    spends = [int(m["lifetimeSpendFen"]) for m in data["bySpend"]]
    assert spends == sorted(spends, reverse=True) and spends[0] == 700
    assert [int(m["points"]) for m in data["byPoints"]] == [7, 7, 7]
    earned = sum(int(c["earned"]) for c in data["cohorts"])
    held = sum(a.balance for a in await Account.filter(brand_id=pk(brand.id), asset="points", kind="member"))
    assert earned == held and all(int(c["open"]) == int(c["earned"]) for c in data["cohorts"])
    # Lapsed, seen from 31 days on: everybody (nobody bought in the 30 days before).
    later = await report_members.member_counts(
        await _brand_row(brand), today, today, 30, now=datetime.now(UTC) + timedelta(days=31)
    )
    assert later.lapsed == MEMBERS


async def _brand_row(brand: Any) -> Any:
    from hub.models import Brand

    return await Brand.get(id=pk(brand.id))


async def test_concurrent_purchases_while_folding_leave_reports_equal_to_the_ledger(world: World) -> None:
    """Purchases at two stores at once while the rollup folds: every figure still adds up."""
    from hub.resolvers import report_rollup
    from tests.reports.support import activity, recomputed

    brand = await make_brand(world.api, world.platform, "Busy")
    ms = []
    for _ in range(6):
        out = await world.api.mutate("enrollMember", {"phone": new_phone()}, brand.store, "membership { id }")
        ms.append(out["membership"]["id"])

    async def buy(i: int) -> None:
        store = brand.store if i % 2 else brand.store2
        input = {"membershipId": ms[i % len(ms)], "amountFen": 1_000 + i, "idempotencyKey": key()}
        out = await world.api.mutate("recordPurchase", input, store, "points")
        assert out["userErrors"] == [], out

    async def folding() -> None:
        for _ in range(10):
            await report_rollup.fold(3)
            await asyncio.sleep(0)

    await asyncio.gather(*(buy(i) for i in range(60)), folding())
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    rows = await activity(world.api, brand.hq, brand.id, today - timedelta(1), today + timedelta(1))
    expected = await recomputed(pk(brand.id), "Asia/Shanghai")
    got = {date.fromisoformat(r["start"]): r for r in rows if int(r["transactions"])}
    assert {d: int(r["salesFen"]) for d, r in got.items()} == {d: v["salesFen"] for d, v in expected.items()}
    assert sum(int(r["purchases"]) for r in rows) == 60
    assert sum(int(r["salesFen"]) for r in rows) == sum(1_000 + i for i in range(60))
    assert (await world.audit())["violations"] == []

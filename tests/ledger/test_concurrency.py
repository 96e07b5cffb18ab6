"""The ledger under concurrent writes, through the whole GraphQL stack, on the real database."""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette

from hub.models import Account, LedgerTransaction, Lot, OutboxEvent, Posting
from tests.helpers import Api, World, fail_after_the_writes, make_world, new_phone, pk


@pytest.fixture
async def world(api: Api) -> World:
    return await make_world(api)


async def _counts() -> tuple[int, int, int, int]:
    return (
        await LedgerTransaction.all().count(),
        await Posting.all().count(),
        await Lot.all().count(),
        await OutboxEvent.all().count(),
    )


async def test_fifty_concurrent_redemptions_of_the_same_points_exactly_one_wins(world: World) -> None:
    membership, _, _ = await world.enroll()
    assert (await world.earn(membership, 10_000, "seed"))["balance"] == 100

    results = await asyncio.gather(*(world.redeem(membership, 80, f"redeem-{i}") for i in range(50)))

    won = [r for r in results if not r["userErrors"]]
    lost = [r for r in results if r["userErrors"]]
    assert len(won) == 1 and won[0]["balance"] == 20
    assert {e["code"] for r in lost for e in r["userErrors"]} == {"INSUFFICIENT_POINTS"}
    assert await world.balance(membership) == 20
    audit = await world.audit()
    assert audit["ok"], audit["violations"]


async def test_twenty_parallel_submissions_of_one_purchase_post_once(world: World) -> None:
    membership, _, _ = await world.enroll()
    before = await LedgerTransaction.filter(idempotency_key="receipt-20").count()

    results = await asyncio.gather(*(world.earn(membership, 12_345, "receipt-20") for _ in range(20)))

    assert all(r == results[0] for r in results), results
    assert results[0]["userErrors"] == [] and results[0]["points"] == 123
    # Scope is the store: exactly one new transaction with this key for this store.
    assert await LedgerTransaction.filter(idempotency_key="receipt-20").count() == before + 1
    assert await world.balance(membership) == 123
    assert (await world.audit())["ok"]


async def test_same_key_other_amount_is_a_conflict_and_writes_nothing(world: World) -> None:
    membership, _, _ = await world.enroll()
    first = await world.earn(membership, 5_000, "receipt-c")
    counts = await _counts()

    again = await world.earn(membership, 5_001, "receipt-c")

    assert again["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    assert again["transaction"] is None
    assert await _counts() == counts
    assert await world.balance(membership) == first["balance"] == 50


async def test_same_receipt_number_at_two_stores_is_two_purchases(world: World) -> None:
    membership, _, _ = await world.enroll()
    await world.earn(membership, 1_000, "till-0001")
    other = await world.api.mutate(
        "recordPurchase",
        {"membershipId": membership, "amountFen": 1_000, "idempotencyKey": "till-0001"},
        world.a.store2,
        "balance",
    )
    assert other == {"userErrors": [], "balance": 20}


async def test_a_write_failing_part_way_leaves_nothing_behind(
    app: Starlette, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    membership, _, _ = await world.enroll()
    await world.earn(membership, 10_000, "seed")
    account = await Account.get(membership_id=pk(membership))
    broker = app.state.services.broker
    account_before = [(a.id, a.balance, a.sequence) for a in await Account.all().order_by("id")]
    lots_before = [(lot.id, lot.remaining) for lot in await Lot.all().order_by("id")]
    counts = await _counts()

    fail_after_the_writes(monkeypatch)
    async with broker.subscribe([account.id]) as events:
        response = await world.api.gql(
            "mutation($i: RedeemPointsInput!) { redeemPoints(input: $i) { balance userErrors { code } } }",
            {"i": {"membershipId": membership, "points": 30, "reason": "x", "idempotencyKey": "boom"}},
            world.a.store,
        )
        # Masked and logged, and answered as the mutation's userError so nothing escapes the payload.
        assert response["data"]["redeemPoints"] == {"balance": None, "userErrors": [{"code": "INTERNAL"}]}
        with pytest.raises(TimeoutError):  # and no event was published
            await asyncio.wait_for(events.get(), 0.6)
    monkeypatch.undo()

    assert await _counts() == counts
    assert [(a.id, a.balance, a.sequence) for a in await Account.all().order_by("id")] == account_before
    assert [(lot.id, lot.remaining) for lot in await Lot.all().order_by("id")] == lots_before
    # The key was not consumed by the failed attempt: the retry goes through.
    retry = await world.redeem(membership, 30, "boom")
    assert retry["userErrors"] == [] and retry["balance"] == 70
    assert (await world.audit())["ok"]


async def test_concurrent_enrolments_of_one_phone_make_one_membership(world: World) -> None:
    phone = new_phone()
    stores = [world.a.store, world.a.store2] * 5 + [world.b.store] * 2
    results = await asyncio.gather(
        *(
            world.api.mutate("enrollMember", {"phone": phone}, s, "created membership { id brand { id } }")
            for s in stores
        )
    )
    assert all(r["userErrors"] == [] for r in results)
    for brand in (world.a, world.b):
        mine = [r for r in results if r["membership"]["brand"]["id"] == brand.id]
        assert len({r["membership"]["id"] for r in mine}) == 1
        assert sum(r["created"] for r in mine) == 1

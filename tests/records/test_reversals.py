"""reverseTransaction: HQ undoes a manual adjustment or a redemption, exactly once."""

from __future__ import annotations

import asyncio

import pytest

from hub.models import ChangeRecord, LedgerTransaction, Lot
from tests.helpers import Api, World, make_world, pk

FIELDS = "transaction { id kind } reversedTransactionId points balance"


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def _adjust(api: Api, world: World, membership: str, points: int, key: str) -> str:
    input = {"membershipId": membership, "points": points, "reason": "fix", "idempotencyKey": key}
    out = await api.mutate("adjustPoints", input, world.a.hq, "transaction { id }")
    assert out["userErrors"] == [], out
    return str(out["transaction"]["id"])


async def _reverse(api: Api, token: str, transaction: str, key: str, reason: str = "mistake") -> dict:
    input = {"transactionId": transaction, "reason": reason, "idempotencyKey": key}
    return await api.mutate("reverseTransaction", input, token, FIELDS)


async def test_an_adjustment_is_reversed_once_and_a_retry_answers_the_first_reversal(
    api: Api, world: World
) -> None:
    membership, _, _ = await world.enroll()
    await world.earn(membership, 10_000, "rev-earn")
    adjustment = await _adjust(api, world, membership, 250, "rev-adj")
    assert await world.balance(membership) == 350
    out = await _reverse(api, world.a.hq, adjustment, "rev-1")
    assert out["userErrors"] == [] and out["transaction"]["kind"] == "REVERSE"
    assert (out["points"], out["balance"], out["reversedTransactionId"]) == (-250, 100, adjustment)
    assert await _reverse(api, world.a.hq, adjustment, "rev-1") == out  # a retry: the same answer
    conflict = await _reverse(api, world.a.hq, adjustment, "rev-1", reason="another")
    assert conflict["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    again = await _reverse(api, world.a.hq, adjustment, "rev-2")
    assert again["userErrors"][0]["code"] == "ALREADY_REVERSED"
    assert await world.balance(membership) == 100
    assert await LedgerTransaction.filter(reverses_id=pk(adjustment)).count() == 1
    records = await ChangeRecord.filter(action="transaction.reverse", subject_id=pk(out["transaction"]["id"]))
    assert len(records) == 1 and records[0].after["reverses"] == pk(adjustment)  # type: ignore[index]
    assert (await world.audit())["ok"]


async def test_a_redemption_is_reversed_into_the_lots_it_drew(api: Api, world: World) -> None:
    membership, _, _ = await world.enroll()
    await world.earn(membership, 5_000, "rev-lots-1")
    redeemed = await world.redeem(membership, 30, "rev-lots-r")
    assert redeemed["balance"] == 20
    lots_before = await Lot.filter(account__membership_id=pk(membership)).count()
    out = await _reverse(api, world.a.hq, redeemed["transaction"]["id"], "rev-lots")
    assert out["userErrors"] == [] and (out["points"], out["balance"]) == (30, 50)
    lots = await Lot.filter(account__membership_id=pk(membership)).order_by("id")
    assert len(lots) == lots_before + 1 and lots[-1].amount == 30
    assert lots[-1].expires_at == lots[0].expires_at
    # The points came back: they can be redeemed again.
    assert (await world.redeem(membership, 50, "rev-lots-r2"))["balance"] == 0
    assert (await world.audit())["ok"]


async def test_kinds_with_their_own_undo_are_not_reversible_and_nothing_is_written(
    api: Api, world: World
) -> None:
    membership, _, _ = await world.enroll()
    earned = await world.earn(membership, 5_000, "rev-no-1")
    before = await LedgerTransaction.all().count()
    out = await _reverse(api, world.a.hq, earned["transaction"]["id"], "rev-no")
    assert out["userErrors"] == [{"code": "NOT_REVERSIBLE", "field": "transactionId"}]
    adjustment = await _adjust(api, world, membership, 5, "rev-no-adj")
    before += 1
    reversal = await _reverse(api, world.a.hq, adjustment, "rev-no-r")
    before += 1
    reverse_again = await _reverse(api, world.a.hq, reversal["transaction"]["id"], "rev-no-rr")
    assert reverse_again["userErrors"] == [{"code": "NOT_REVERSIBLE", "field": "transactionId"}]
    empty = await _reverse(api, world.a.hq, adjustment, "rev-no-e", reason=" ")
    assert empty["userErrors"] == [{"code": "INVALID_INPUT", "field": "reason"}]
    foreign = await _reverse(api, world.b.hq, adjustment, "rev-no-f")
    assert foreign["userErrors"] == [{"code": "NOT_FOUND", "field": "transactionId"}]
    bad_id = await _reverse(api, world.a.hq, membership, "rev-no-b")
    assert bad_id["userErrors"] == [{"code": "INVALID_ID", "field": "transactionId"}]
    assert await LedgerTransaction.all().count() == before


async def test_points_already_spent_cannot_be_taken_back(api: Api, world: World) -> None:
    membership, _, _ = await world.enroll()
    adjustment = await _adjust(api, world, membership, 40, "rev-spent-adj")
    await world.redeem(membership, 30, "rev-spent-r")
    before = await LedgerTransaction.all().count()
    out = await _reverse(api, world.a.hq, adjustment, "rev-spent")
    assert out["userErrors"][0]["code"] == "INSUFFICIENT_POINTS"
    assert await LedgerTransaction.all().count() == before and await world.balance(membership) == 10


async def test_concurrent_reversals_reverse_exactly_once(api: Api, world: World) -> None:
    membership, _, _ = await world.enroll()
    await world.earn(membership, 20_000, "rev-race-earn")
    adjustments = [await _adjust(api, world, membership, -10, f"rev-race-adj-{i}") for i in range(3)]
    assert await world.balance(membership) == 170
    outs = await asyncio.gather(
        *(_reverse(api, world.a.hq, t, f"rev-race-{t}-{i}") for t in adjustments for i in range(6))
    )
    done = [o for o in outs if o["userErrors"] == []]
    refused = [o["userErrors"][0]["code"] for o in outs if o["userErrors"]]
    assert len(done) == 3 and set(refused) == {"ALREADY_REVERSED"} and len(refused) == 15
    assert await world.balance(membership) == 200
    for t in adjustments:
        assert await LedgerTransaction.filter(reverses_id=pk(t)).count() == 1
    assert (await world.audit())["ok"]

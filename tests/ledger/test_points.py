"""Points through the API: what a replay answers, and limits that keep every balance inside 64 bits."""

from __future__ import annotations

import pytest

from hub.models import Brand, LedgerTransaction, Posting
from tests.helpers import Api, World, make_world, pk, tamper


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def test_a_zero_point_purchase_replays_the_balance_it_had(world: World) -> None:
    membership, _, _ = await world.enroll()
    assert (await world.earn(membership, 100, "zp-1"))["balance"] == 1
    small = await world.earn(membership, 99, "zp-2")  # too small to earn a point
    assert (small["points"], small["balance"]) == (0, 1)
    assert (await world.earn(membership, 500, "zp-3"))["balance"] == 6

    replay = await world.earn(membership, 99, "zp-2")

    assert replay == small  # the balance right after that purchase, not today's


async def test_earn_rates_are_at_most_one_point_per_fen(api: Api, world: World) -> None:
    out = await api.mutate(
        "setEarnRate",
        {"brandId": world.b.id, "earnPoints": 10_000, "earnUnitFen": 1},
        world.b.hq,
        "brand { earnRate { points unitFen } }",
    )
    assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": "earnPoints"}]
    out = await api.mutate(
        "createBrand",
        {"name": "Greedy", "earnPoints": 101, "earnUnitFen": 100},
        world.platform,
        "brand { id }",
    )
    assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": "earnPoints"}]


async def test_one_purchase_cannot_earn_past_the_cap_even_at_a_stored_extreme_rate(api: Api) -> None:
    world = await make_world(api)
    membership, _, _ = await world.enroll()
    # A rate stored before rates were checked: 10,000 points per fen would earn 2·10^13 for one purchase.
    await tamper(f"UPDATE brand SET earn_points = 10000, earn_unit_fen = 1 WHERE id = {pk(world.a.id)}")
    assert (await Brand.get(id=pk(world.a.id))).earn_points == 10_000
    before = (await LedgerTransaction.all().count(), await Posting.all().count())

    out = await world.earn(membership, 2**31 - 1, "huge")

    assert out["userErrors"] == [{"code": "AMOUNT_TOO_LARGE", "field": None}]
    assert (await LedgerTransaction.all().count(), await Posting.all().count()) == before
    assert await world.balance(membership) == 0

"""Pending points: held for the return window, shown but not spendable, matured by the worker, cancelled
first by a refund (the clawback legs the refund path uses)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette

from hub.ledger.commands import Command
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import Membership, TransactionKind
from hub.resolvers import maturity
from hub.resolvers.earning import Clawback, post_clawback
from tests.earning.support import purchase
from tests.helpers import Api, World, make_world, pk
from tests.worker.handlers import wait_status

_n = itertools.count()
POINTS = "query($id: ID!) { node(id: $id) { ... on Membership { points { available pending } } } }"


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    world = await make_world(api)
    out = await api.mutate(
        "updateBrandSettings", {"brandId": world.a.id, "pendingDays": 7}, world.a.hq, "brand { pendingDays }"
    )
    assert out == {"userErrors": [], "brand": {"pendingDays": 7}}
    return world


async def points(world: World, membership: str) -> tuple[int, int]:
    node = (await world.api.data(POINTS, {"id": membership}, world.a.hq))["node"]["points"]
    return int(node["available"]), int(node["pending"])


async def clawback(ledger: LedgerWriter, membership: str, transaction: str, amount: int) -> Clawback:
    ms = await Membership.get(id=pk(membership))

    def build(cb: Clawback) -> Command:
        return Command(
            TransactionKind.ADJUST,
            ms.brand_id,
            cb.legs,
            claim("test", f"refund-{next(_n)}", "refund"),
            membership_id=ms.id,
            reason="refund",
            details={"clawbackOf": pk(transaction)},
        )

    _, taken = await post_clawback(ledger, ms, pk(transaction), amount, build)
    return taken


async def test_pending_points_are_shown_not_spendable_and_mature(world: World, ledger: LedgerWriter) -> None:
    membership, _, _ = await world.enroll()
    out = await purchase(world, membership, 10_000)
    assert (out["points"], out["pendingPoints"], out["balance"]) == (100, 100, 0)
    matures = datetime.fromisoformat(out["maturesAt"])
    assert timedelta(days=7) - timedelta(minutes=1) < matures - datetime.now(UTC) <= timedelta(days=7)
    assert await points(world, membership) == (0, 100)
    refused = await world.redeem(membership, 1, "pending-spend")
    assert refused["userErrors"] == [{"code": "INSUFFICIENT_POINTS", "field": "points"}]

    assert await maturity.mature_due(ledger, datetime.now(UTC) + timedelta(days=6)) == 0
    assert await maturity.mature_due(ledger, matures) >= 1
    assert await points(world, membership) == (100, 0)
    assert await maturity.mature_due(ledger, matures) == 0  # nothing is due twice
    assert (await world.redeem(membership, 100, "spend-matured"))["userErrors"] == []
    assert (await world.audit())["ok"]


async def test_the_scheduled_job_matures_due_lots(world: World, app: Starlette) -> None:
    from hub.worker.store import enqueue

    membership, _, _ = await world.enroll()
    await purchase(world, membership, 5_000)
    until = (datetime.now(UTC) + timedelta(days=8)).isoformat()
    job, _ = await enqueue(maturity.KIND, name="test maturity", params={"until": until})
    app.state.worker.wake()
    finished = await wait_status(job.id, "done", "failed")  # type: ignore[arg-type]
    assert finished.status == "done" and finished.failed == 0
    assert await points(world, membership) == (50, 0)
    query = "query($id: ID!) { node(id: $id) { ... on Membership { history(first: 1) { edges { node { delta transaction { kind } } } } } } }"
    entry = (await world.api.data(query, {"id": membership}, world.a.hq))["node"]["history"]["edges"][0][
        "node"
    ]
    assert entry == {"delta": 50, "transaction": {"kind": "MATURE"}}
    assert (await world.audit())["ok"]


async def test_a_refund_before_maturity_cancels_pending_first(world: World, ledger: LedgerWriter) -> None:
    membership, _, _ = await world.enroll()
    earned = await purchase(world, membership, 10_000)
    await world.api.mutate(
        "adjustPoints",
        {"membershipId": membership, "points": 50, "reason": "gift", "idempotencyKey": f"g{next(_n)}"},
        world.a.hq,
        "points",
    )
    taken = await clawback(ledger, membership, earned["transaction"]["id"], 120)
    assert (taken.from_pending, taken.from_available, taken.shortfall) == (100, 20, 0)
    assert await points(world, membership) == (30, 0)
    await maturity.mature_due(ledger, datetime.now(UTC) + timedelta(days=8))
    assert await points(world, membership) == (30, 0)  # nothing left to mature
    assert (await world.audit())["ok"]


async def test_a_partial_refund_leaves_the_rest_to_mature(world: World, ledger: LedgerWriter) -> None:
    membership, _, _ = await world.enroll()
    earned = await purchase(world, membership, 10_000)
    taken = await clawback(ledger, membership, earned["transaction"]["id"], 30)
    assert (taken.from_pending, taken.from_available) == (30, 0)
    assert await points(world, membership) == (0, 70)
    await maturity.mature_due(ledger, datetime.now(UTC) + timedelta(days=8))
    assert await points(world, membership) == (70, 0)
    assert (await world.audit())["ok"]


async def test_a_refund_after_maturity_takes_what_is_left_and_says_what_is_not(
    api: Api, ledger: LedgerWriter
) -> None:
    world = await make_world(api)  # no return window
    membership, _, _ = await world.enroll()
    earned = await purchase(world, membership, 10_000)
    assert (await world.redeem(membership, 80, "spent"))["userErrors"] == []
    taken = await clawback(ledger, membership, earned["transaction"]["id"], 100)
    assert (taken.from_pending, taken.from_available, taken.shortfall) == (0, 20, 80)
    assert await world.balance(membership) == 0
    assert (await world.audit())["ok"]


async def test_refunds_racing_maturity_never_take_or_move_a_point_twice(
    world: World, ledger: LedgerWriter
) -> None:
    members = [(await world.enroll())[0] for _ in range(8)]
    earns = [await purchase(world, m, 10_000) for m in members]
    until = datetime.now(UTC) + timedelta(days=8)
    await asyncio.gather(
        maturity.mature_due(ledger, until),
        *(clawback(ledger, m, e["transaction"]["id"], 100) for m, e in zip(members, earns, strict=True)),
    )
    # Whichever came first, the refund took the 100 points back: from pending, or after maturing.
    assert [await points(world, m) for m in members] == [(0, 0)] * len(members)
    assert (await world.audit())["ok"]

"""Tiers: the ladder, upgrades at once (once under concurrency, one event), the review at a period's end,
the history with reasons, and the live tierChanged stream."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from starlette.applications import Starlette

from hub.events.broker import LocalBroker
from hub.models import Membership, TierChange
from hub.resolvers import tiers
from hub.worker.handlers import JobContext
from tests.earning.support import purchase
from tests.helpers import Api, Brand, World, make_world, pk, subscribe_first
from tests.worker.handlers import wait_status

SHANGHAI = ZoneInfo("Asia/Shanghai")
LADDER_FIELDS = "ladder { basis window rollingDays downgrade tiers { code name threshold } }"
STEPS = [
    {"code": "silver", "name": "Silver", "threshold": 100},
    {"code": "gold", "name": "Gold", "threshold": 500},
    {"code": "platinum", "name": "Platinum", "threshold": 1_000},
]
TIER_SUBSCRIPTION = (
    "subscription($m: ID, $a: Int) { tierChanged(membershipId: $m, afterSeq: $a) {"
    " seq membershipId fromTier toTier direction reason value } }"
)


async def set_ladder(api: Api, brand: Brand, **fields: Any) -> dict[str, Any]:
    body = {
        "brandId": brand.id,
        "basis": "POINTS",
        "window": "CALENDAR_YEAR",
        "downgrade": "ONE_STEP",
        "tiers": STEPS,
    }
    out = await api.mutate("setTierLadder", {**body, **fields}, brand.hq, LADDER_FIELDS)
    return out


async def tier_of(membership: str) -> str:
    return (await Membership.get(id=pk(membership))).tier


async def test_a_purchase_that_crosses_a_threshold_upgrades_at_once(api: Api) -> None:
    world = await make_world(api)
    assert (await set_ladder(api, world.a))["userErrors"] == []
    membership, _, token = await world.enroll()
    first = await purchase(
        world, membership, 20_000, fields="points tierChange { fromTier toTier direction reason seq }"
    )
    assert first["tierChange"] == {
        "fromTier": "normal",
        "toTier": "silver",
        "direction": "UP",
        "reason": f"200 points in {datetime.now(SHANGHAI).year} reached Silver (100)",
        "seq": 1,
    }
    # Two steps at once: one change, straight to the tier the total reaches.
    second = await purchase(world, membership, 100_000, fields="tierChange { fromTier toTier }")
    assert second["tierChange"] == {"fromTier": "silver", "toTier": "platinum"}
    assert (await purchase(world, membership, 100, fields="tierChange { toTier }"))["tierChange"] is None
    query = """query($id: ID!) { node(id: $id) { ... on Membership { tier
        tierStatus { tier name value nextTier { code } }
        tierChanges(first: 5) { edges { node { seq fromTier toTier direction } } }
        brand { tierLadder { basis tiers { code } } } } } }"""
    node = (await api.data(query, {"id": membership}, token))["node"]
    assert node["tier"] == "platinum"
    assert node["tierStatus"] == {"tier": "platinum", "name": "Platinum", "value": 1_201, "nextTier": None}
    assert [e["node"]["seq"] for e in node["tierChanges"]["edges"]] == [2, 1]
    assert node["brand"]["tierLadder"] == {
        "basis": "POINTS",
        "tiers": [{"code": c} for c in ("silver", "gold", "platinum")],
    }
    assert (await world.audit())["ok"]


async def test_concurrent_purchases_crossing_the_line_upgrade_once_with_one_event(
    api: Api, app: Starlette
) -> None:
    world = await make_world(api)
    assert (await set_ladder(api, world.a, downgrade="NONE"))["userErrors"] == []
    membership, _, _ = await world.enroll()
    broker: LocalBroker = app.state.services.broker
    async with broker.subscribe([tiers.tier_channel(pk(membership))]) as sub:
        outs = await asyncio.gather(
            *(purchase(world, membership, 12_500, fields="tierChange { toTier }") for _ in range(12))
        )  # 125 points each: silver at the first, gold at the fourth, platinum at the eighth
        await asyncio.sleep(0.2)
        messages = []
        while not sub.queue.empty():
            messages.append(sub.queue.get_nowait())
    changes = await TierChange.filter(membership_id=pk(membership)).order_by("seq")
    assert [c.to_tier for c in changes][-1] == "platinum"
    assert len({c.to_tier for c in changes}) == len(changes)  # never the same step twice
    assert [c.seq for c in changes] == list(range(1, len(changes) + 1))
    assert sorted(m["seq"] for m in messages) == [c.seq for c in changes]  # one event per change
    assert sum(o["tierChange"] is not None for o in outs) == len(changes)
    assert await tier_of(membership) == "platinum"


async def _review(app: Starlette, until: datetime) -> int:
    """Run the review job as the worker does, with ``until`` as its time."""
    from hub.worker.store import enqueue

    job, _ = await enqueue(tiers.REVIEW_KIND, name="test review", params={"until": until.isoformat()})
    app.state.worker.wake()
    done = await wait_status(job.id, "done", "failed")  # type: ignore[arg-type]
    assert done.status == "done", done.last_error
    return done.done


def _new_year(year: int) -> datetime:
    return datetime(year, 1, 1, 0, 30, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("downgrade", "after_next_year", "after_one_more"),
    [
        ("ONE_STEP", ["silver", "gold", "normal"], ["normal", "silver", "normal"]),
        ("RECOMPUTE", ["normal", "normal", "normal"], ["normal", "normal", "normal"]),
        ("NONE", ["gold", "platinum", "silver"], ["gold", "platinum", "silver"]),
    ],
)
async def test_downgrade_at_the_year_end_by_policy(
    api: Api, app: Starlette, downgrade: str, after_next_year: list[str], after_one_more: list[str]
) -> None:
    world = await make_world(api)
    assert (await set_ladder(api, world.a, downgrade=downgrade))["userErrors"] == []
    members = [(await world.enroll())[0] for _ in range(3)]
    for membership, amount in zip(members, (60_000, 120_000, 15_000), strict=True):
        await purchase(world, membership, amount)
    assert [await tier_of(m) for m in members] == ["gold", "platinum", "silver"]
    year = datetime.now(SHANGHAI).year

    await _review(app, _new_year(year + 1))  # this year's review: everyone qualified
    assert [await tier_of(m) for m in members] == ["gold", "platinum", "silver"]
    await _review(app, _new_year(year + 2))  # next year: nobody bought
    assert [await tier_of(m) for m in members] == after_next_year
    await _review(app, _new_year(year + 2))  # the same period again: nothing more
    assert [await tier_of(m) for m in members] == after_next_year
    await _review(app, _new_year(year + 3))
    assert [await tier_of(m) for m in members] == after_one_more

    downs = await TierChange.filter(membership_id=pk(members[0]), direction="down").order_by("seq")
    if downgrade == "ONE_STEP":
        assert [(c.review_period, c.from_tier, c.to_tier) for c in downs] == [
            (str(year + 1), "gold", "silver"),
            (str(year + 2), "silver", "normal"),
        ]
        assert downs[0].reason == f"review of {year + 1}: 0 points, one step to silver"
    assert (await world.audit())["ok"]


async def test_a_rolling_window_is_reviewed_at_the_month_end(api: Api, app: Starlette) -> None:
    world = await make_world(api)
    assert (await set_ladder(api, world.a, window="ROLLING_DAYS", rollingDays=30, downgrade="RECOMPUTE"))[
        "userErrors"
    ] == []
    membership, _, _ = await world.enroll()
    await purchase(world, membership, 60_000)
    assert await tier_of(membership) == "gold"
    now = datetime.now(SHANGHAI)
    month_start = datetime(now.year, now.month, 1, 0, 30, tzinfo=SHANGHAI)
    await _review(app, month_start.replace(year=now.year + 1))  # a month end long after the purchase
    assert await tier_of(membership) == "normal"
    change = await TierChange.filter(membership_id=pk(membership), direction="down").get()
    assert (
        change.review_period
        == f"{now.year + 1 - (1 if now.month == 1 else 0):04d}-{(now.month - 2) % 12 + 1:02d}"
    )


async def test_tier_changed_streams_each_change_with_catch_up(api: Api, app: Starlette, schema: Any) -> None:
    world = await make_world(api)
    assert (await set_ladder(api, world.a))["userErrors"] == []
    membership, _, token = await world.enroll()
    await purchase(world, membership, 20_000)
    first = await subscribe_first(app, schema, TIER_SUBSCRIPTION, {"m": membership, "a": 0}, token)
    assert first["errors"] == []
    assert first["data"]["tierChanged"]["toTier"] == "silver"
    refused = await subscribe_first(app, schema, TIER_SUBSCRIPTION, {"m": membership, "a": 5}, token)
    assert refused["errors"][0]["extensions"]["code"] == "INVALID_INPUT"

    # Live: a member token watching all its memberships sees the next upgrade.
    from hub.schema.context import HubContext

    services = app.state.services
    context = HubContext(
        services=services, principal=await services.authenticator.principal_for(token), credential=token
    )
    stream = await schema.subscribe(TIER_SUBSCRIPTION, variable_values={}, context_value=context)
    try:
        nxt = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.1)
        await purchase(world, membership, 40_000)
        event = await asyncio.wait_for(nxt, 5)
        assert event.data["tierChanged"]["seq"] == 2 and event.data["tierChanged"]["toTier"] == "gold"
    finally:
        with contextlib.suppress(Exception):
            await stream.aclose()


async def test_the_stream_fills_a_gap_from_the_rows() -> None:
    """A lost message (a process died between commit and publish) is read from the rows when the next
    one arrives."""
    from tests.worker.handlers import brand_with_members

    brand_id = await brand_with_members(1)
    membership = await Membership.filter(brand_id=brand_id).first()
    assert membership is not None
    broker = LocalBroker()
    rows = [
        await TierChange.create(
            brand_id=brand_id,
            membership_id=membership.id,
            seq=seq,
            from_tier="normal",
            to_tier=f"t{seq}",
            direction="up",
            reason="test",
            value=seq,
        )
        for seq in (1, 2)
    ]
    stream = tiers.tier_events(broker, [membership.id], {membership.id: 0})
    assert [(await anext(stream)).seq for _ in range(2)] == [1, 2]
    lost = await TierChange.create(
        brand_id=brand_id,
        membership_id=membership.id,
        seq=3,
        from_tier="t2",
        to_tier="t3",
        direction="up",
        reason="x",
        value=3,
    )
    fourth = await TierChange.create(
        brand_id=brand_id,
        membership_id=membership.id,
        seq=4,
        from_tier="t3",
        to_tier="t4",
        direction="up",
        reason="x",
        value=4,
    )
    await tiers.publish(broker, [tiers.TierChanged.of(fourth)])  # the third was never published
    assert [(await anext(stream)).seq for _ in range(2)] == [3, 4]
    await stream.aclose()
    assert rows and lost


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"tiers": []}, "tiers"),
        ({"tiers": [{"code": "normal", "name": "N", "threshold": 5}]}, "tiers.code"),
        (
            {
                "tiers": [
                    {"code": "a", "name": "A", "threshold": 5},
                    {"code": "a", "name": "B", "threshold": 6},
                ]
            },
            "tiers.code",
        ),
        (
            {
                "tiers": [
                    {"code": "a", "name": "A", "threshold": 5},
                    {"code": "b", "name": "B", "threshold": 5},
                ]
            },
            "tiers.threshold",
        ),
        ({"tiers": [{"code": "a", "name": "A", "threshold": 0}]}, "tiers.threshold"),
        ({"window": "ROLLING_DAYS"}, "rollingDays"),
    ],
)
async def test_a_bad_ladder_writes_nothing(api: Api, fields: dict[str, Any], field: str) -> None:
    world = await make_world(api)
    out = await set_ladder(api, world.a, **fields)
    assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": field}]
    assert (
        await api.data(
            "query($id: ID!) { node(id: $id) { ... on Brand { tierLadder { basis } } } }",
            {"id": world.a.id},
            world.a.hq,
        )
    )["node"]["tierLadder"] is None


async def test_a_tier_members_hold_cannot_be_removed(api: Api) -> None:
    world = await make_world(api)
    assert (await set_ladder(api, world.a))["userErrors"] == []
    membership, _, _ = await world.enroll()
    await purchase(world, membership, 20_000)
    out = await set_ladder(api, world.a, tiers=STEPS[1:])
    assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": "tiers"}]
    # Changing thresholds and names is fine; the member keeps the tier until a review.
    steps = [{**s, "threshold": s["threshold"] * 10} for s in STEPS]
    assert (await set_ladder(api, world.a, tiers=steps))["ladder"]["tiers"][0]["threshold"] == 1_000
    assert await tier_of(membership) == "silver"


async def test_the_review_job_reports_its_members(api: Api, app: Starlette) -> None:
    world: World = await make_world(api)
    assert (await set_ladder(api, world.a))["userErrors"] == []
    members = [(await world.enroll())[0] for _ in range(3)]
    for membership in members:
        await purchase(world, membership, 20_000)
    handler = tiers.TierReview(chunk_size=2)
    ctx = JobContext(
        0,
        tiers.REVIEW_KIND,
        None,
        "t",
        {"until": _new_year(datetime.now(SHANGHAI).year + 2).isoformat()},
        1,
        None,
        None,
        0,
        0,
        lease_valid_until=float("inf"),
    )
    plan = await handler.plan(ctx)
    mine = [b for b in plan.cursor["brands"] if b[0] == pk(world.a.id)]
    assert mine and plan.total is not None and plan.total >= 3
    cursor: dict[str, Any] | None = {**plan.cursor, "brands": mine}
    done = 0
    while cursor is not None:
        chunk = await handler.run_chunk(ctx, cursor)
        done, cursor = done + chunk.done, chunk.cursor
    assert done == 3
    assert [await tier_of(m) for m in members] == ["normal"] * 3

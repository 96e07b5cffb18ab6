"""The brand's live activity feed (``brandActivity``): what HQ sees as it commits, and only its own."""

from __future__ import annotations

import asyncio
import base64
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.applications import Starlette

from hub.events.broker import RedisBroker, brand_topic
from hub.ledger.events import BalanceEvent
from hub.schema.context import HubContext
from tests import conftest
from tests.helpers import Api, World, make_world, outcome, subscribe_first

FEED = """subscription($b: ID!) {
  brandActivity(brandId: $b) { membershipId asset pending delta balance transaction { kind storeId } }
}"""


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


def _gid(type_name: str, key: int) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


class Feed:
    """A ``brandActivity`` stream in this process, known to be subscribed (``warm``)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    @classmethod
    async def open(cls, app: Starlette, schema: Any, brand_id: str, token: str) -> Feed:
        services = app.state.services
        principal = await services.authenticator.principal_for(token)
        context = HubContext(services=services, principal=principal, credential=token)
        stream = await schema.subscribe(FEED, variable_values={"b": brand_id}, context_value=context)
        return cls(stream)

    async def warm(self, world: World, membership: str) -> None:
        """Earn until the stream, which subscribes on its first read, reports an earn."""
        first = asyncio.ensure_future(anext(self.stream))
        for i in range(50):
            done, _ = await asyncio.wait({first}, timeout=0.2)
            if done:
                break
            await world.earn(membership, 100, f"feed-warm-{secrets.token_hex(4)}-{i}")
        event = await asyncio.wait_for(first, 5)
        assert not event.errors, event.errors

    async def next(self) -> dict[str, Any]:
        event = await asyncio.wait_for(anext(self.stream), 5)
        assert not event.errors, event.errors
        return event.data["brandActivity"]

    async def close(self) -> None:
        await self.stream.aclose()


async def test_hq_sees_earns_redemptions_and_adjustments_of_its_brand_only(
    api: Api, app: Starlette, schema: Any, world: World
) -> None:
    member_a, _, _ = await world.enroll()
    member_b, _, _ = await world.enroll(world.b)
    feed = await Feed.open(app, schema, world.a.id, world.a.hq)
    try:
        await feed.warm(world, member_a)
        # Brand B's purchase comes first: were it delivered to A's feed, it would be the next event.
        assert (await world.earn(member_b, 50_000, "feed-b", world.b))["userErrors"] == []
        assert (await world.earn(member_a, 10_000, "feed-earn"))["userErrors"] == []
        assert (await world.redeem(member_a, 30, "feed-redeem"))["userErrors"] == []
        adjusted = await api.mutate(
            "adjustPoints",
            {"membershipId": member_a, "points": -5, "reason": "goodwill", "idempotencyKey": "feed-adj"},
            world.a.hq,
            "points",
        )
        assert adjusted["userErrors"] == [], adjusted
        seen = [await feed.next() for _ in range(3)]
    finally:
        await feed.close()

    assert [(e["membershipId"], e["transaction"]["kind"], e["delta"]) for e in seen] == [
        (member_a, "EARN", 100),
        (member_a, "REDEEM", -30),
        (member_a, "ADJUST", -5),
    ]
    assert seen[0]["transaction"]["storeId"] == world.a.store_id
    assert all(e["asset"] == "points" and e["pending"] is False for e in seen)
    assert seen[-1]["balance"] == await world.balance(member_a)
    assert (await world.audit())["ok"]


async def test_a_foreign_or_missing_brand_is_not_found(app: Starlette, schema: Any, world: World) -> None:
    foreign = await subscribe_first(app, schema, FEED, {"b": world.b.id}, world.a.hq)
    assert outcome(foreign) == "NOT_FOUND"
    bad_id = await subscribe_first(app, schema, FEED, {"b": "not-an-id"}, world.a.hq)
    assert outcome(bad_id) == "INVALID_ID"
    missing = await subscribe_first(app, schema, FEED, {"b": _gid("Brand", 9_000_000_000)}, world.a.hq)
    assert foreign["errors"][0]["message"] == missing["errors"][0]["message"]


@pytest.mark.skipif(conftest.BACKEND != "postgres", reason="the PostgreSQL + Redis pass")
async def test_a_brand_topic_receives_events_published_by_another_process() -> None:
    prefix = f"hubtest-brand-{secrets.token_hex(4)}:"
    watching, writing = RedisBroker(conftest.REDIS_URL, prefix), RedisBroker(conftest.REDIS_URL, prefix)
    await watching.start()
    await writing.start()
    event = BalanceEvent(
        account_id=1, membership_id=2, brand_id=77, asset="points", asset_code="", kind="member",
        sequence=1, balance=5, delta=5, transaction_id=3, transaction_kind="earn", store_id=None,
        created_at=datetime.now(UTC),
    )  # fmt: skip
    other = BalanceEvent(
        **{**{f: getattr(event, f) for f in event.__slots__ if f != "__weakref__"}, "brand_id": 78}
    )
    try:
        async with watching.subscribe([brand_topic(77)]) as sub:
            await writing.publish([other, event])
            received = await asyncio.wait_for(sub.get(), 5)
    finally:
        await watching.close()
        await writing.close()
    assert received == event


async def test_concurrent_purchases_each_reach_the_feed_once(
    app: Starlette, schema: Any, world: World
) -> None:
    members = [(await world.enroll())[0] for _ in range(10)]
    feed = await Feed.open(app, schema, world.a.id, world.a.hq)
    try:
        await feed.warm(world, members[0])
        outs = await asyncio.gather(
            *(world.earn(m, 1_000 * (i + 1), f"feed-burst-{i}") for i, m in enumerate(members))
        )
        assert all(o["userErrors"] == [] for o in outs), outs
        seen = [await feed.next() for _ in members]
        # One more purchase, after them all: the next event is its own, so none came twice.
        assert (await world.earn(members[0], 77_700, "feed-burst-marker"))["userErrors"] == []
        marker = await feed.next()
    finally:
        await feed.close()
    assert sorted((e["membershipId"], e["delta"]) for e in seen) == sorted(
        (m, 10 * (i + 1)) for i, m in enumerate(members)
    )
    assert (await world.audit())["ok"]
    assert (marker["membershipId"], marker["delta"]) == (members[0], 777)

"""Expiring soon: the member's view by date, HQ's paged list, and the pointsExpiring notices (once per
expiry date and lead time, across runs and restarts; a crash between insert and publish publishes later)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette

from hub.ledger.engine import LedgerWriter
from hub.models import ExpiryNotice, JobStatus
from hub.resolvers import expiring
from hub.worker.store import enqueue
from tests.helpers import Api, World, make_world, pk, subscribe_first
from tests.lifecycle.support import grant_lots
from tests.worker.handlers import wait_status, wait_until

VIEW = """query($id: ID!, $d: Int!) { node(id: $id) { ... on Membership {
  expiringPoints(withinDays: $d) { points expiresAt } } } }"""
LIST = """query($b: ID!, $d: Int!, $first: Int!, $after: String) {
  membershipsWithExpiringPoints(brandId: $b, withinDays: $d, first: $first, after: $after) {
    edges { node { points firstExpiresAt membership { id } } }
    pageInfo { hasNextPage hasPreviousPage endCursor } } }"""
NOTICES = """subscription($m: ID!, $after: Int) { pointsExpiring(membershipId: $m, afterNoticeId: $after) {
  noticeId membershipId points expiresAt leadDays } }"""


@pytest.fixture
async def world(api: Api) -> World:
    return await make_world(api)  # each test its own brands: notices are per brand


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def at(days: float) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


async def test_a_member_sees_its_points_expiring_by_date(
    world: World, ledger: LedgerWriter, api: Api
) -> None:
    membership, _, token = await world.enroll()
    d5, d20, d200 = at(5), at(20), at(200)
    await grant_lots(ledger, membership, [(30, d5), (20, d5), (40, d20), (50, d200), (9, None)])
    await world.redeem(membership, 10, "spend-exp")  # drawn from the soonest lot
    view = (await api.data(VIEW, {"id": membership, "d": 30}, token))["node"]["expiringPoints"]
    assert [(v["points"], datetime.fromisoformat(v["expiresAt"])) for v in view] == [(40, d5), (40, d20)]
    longer = (await api.data(VIEW, {"id": membership, "d": 365}, world.a.store))["node"]["expiringPoints"]
    assert [v["points"] for v in longer] == [40, 40, 50]
    body = await api.gql(VIEW, {"id": membership, "d": 0}, token)
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_hq_pages_through_memberships_with_points_expiring_soon(
    world: World, ledger: LedgerWriter, api: Api
) -> None:
    expected = {}
    for i in range(5):
        membership, _, _ = await world.enroll()
        await grant_lots(ledger, membership, [(10 + i, at(3 + i)), (100, at(90))])
        expected[membership] = 10 + i
    later, _, _ = await world.enroll()
    await grant_lots(ledger, later, [(7, at(60))])  # outside a 30-day window
    never, _, _ = await world.enroll()
    await grant_lots(ledger, never, [(7, None)])
    seen: dict[str, int] = {}
    after, pages = None, 0
    while True:
        page = (await api.data(LIST, {"b": world.a.id, "d": 30, "first": 2, "after": after}, world.a.hq))[
            "membershipsWithExpiringPoints"
        ]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen |= {e["node"]["membership"]["id"]: e["node"]["points"] for e in page["edges"]}
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected and pages == 3
    foreign = await api.gql(LIST, {"b": world.a.id, "d": 30, "first": 2}, world.b.hq)
    assert foreign["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    denied = await api.gql(LIST, {"b": world.a.id, "d": 30, "first": 2}, world.a.store)
    assert denied["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


async def _notices(membership: str) -> list[tuple[int, int, datetime]]:
    rows = await ExpiryNotice.filter(membership_id=pk(membership)).order_by("id")
    return [(n.lead_days, int(n.points), n.expires_at) for n in rows]


async def test_notices_are_sent_once_per_date_and_lead_time_across_runs(
    world: World, ledger: LedgerWriter, app: Starlette, schema: Any
) -> None:
    broker = app.state.services.broker
    membership, _, token = await world.enroll()
    d20, d5, d100 = at(20), at(5), at(100)
    await grant_lots(ledger, membership, [(40, d20), (15, d5), (99, d100)])
    brand, now = pk(world.a.id), datetime.now(UTC)
    assert await expiring.notify_brand(broker, brand, (30, 7), now) == 2
    # The batch 5 days away gets the 7-day notice only; the one 20 days away the 30-day one.
    assert sorted(await _notices(membership)) == [(7, 15, d5), (30, 40, d20)]
    # Runs again, by any worker, after a restart: nothing new.
    assert await expiring.notify_brand(broker, brand, (30, 7), now + timedelta(minutes=15)) == 0
    # Sixteen days later the 20-day batch is within 7 days: its 7-day notice, once; live to a subscriber.
    last = max(n.id for n in await ExpiryNotice.filter(membership_id=pk(membership)))
    before = broker.subscriber_count
    live = asyncio.create_task(subscribe_first(app, schema, NOTICES, {"m": membership, "after": last}, token))
    await wait_until(lambda: broker.subscriber_count > before)
    assert await expiring.notify_brand(broker, brand, (30, 7), now + timedelta(days=16)) == 1
    event = (await asyncio.wait_for(live, 5))["data"]["pointsExpiring"]
    assert (event["points"], event["leadDays"], event["membershipId"]) == (40, 7, membership)
    assert datetime.fromisoformat(event["expiresAt"]) == d20
    assert await expiring.notify_brand(broker, brand, (30, 7), now + timedelta(days=16, hours=1)) == 0
    assert sorted(await _notices(membership)) == sorted([(7, 15, d5), (30, 40, d20), (7, 40, d20)])
    # A member catching up reads them from the rows, in order.
    first = await subscribe_first(app, schema, NOTICES, {"m": membership, "after": 0}, token)
    assert first["data"]["pointsExpiring"]["noticeId"] == min(
        n.id for n in await ExpiryNotice.filter(membership_id=pk(membership))
    )
    assert await ExpiryNotice.filter(membership_id=pk(membership), published_at__isnull=True).count() == 0


async def test_a_notice_written_but_not_published_is_published_by_the_next_run(
    world: World, ledger: LedgerWriter, app: Starlette
) -> None:
    membership, _, _ = await world.enroll()
    await grant_lots(ledger, membership, [(12, at(4))])
    now = datetime.now(UTC)
    made = await expiring.make_notices(pk(world.a.id), (30, 7), now)  # the process dies here
    assert len(made) == 1
    assert await ExpiryNotice.filter(id=made[0].notice_id, published_at__isnull=True).exists()
    await expiring.notify_brand(
        app.state.services.broker, pk(world.a.id), (30, 7), now + timedelta(minutes=15)
    )
    assert await ExpiryNotice.filter(id=made[0].notice_id, published_at__isnull=False).exists()
    assert len(await _notices(membership)) == 1


async def test_the_notice_job_uses_the_brands_lead_times(
    world: World, ledger: LedgerWriter, api: Api
) -> None:
    out = await api.mutate(
        "updateLifecycleSettings",
        {"brandId": world.a.id, "noticeLeadDays": [3]},
        world.a.hq,
        "settings { noticeLeadDays }",
    )
    assert out["settings"]["noticeLeadDays"] == [3]
    membership, _, _ = await world.enroll()
    await grant_lots(ledger, membership, [(8, at(2)), (9, at(6))])
    job, _ = await enqueue(
        expiring.NOTIFY_KIND, brand_id=pk(world.a.id), params={"at": iso(datetime.now(UTC))}
    )
    done = await wait_status(job.id, JobStatus.DONE, JobStatus.FAILED, timeout=30)
    assert done.status is JobStatus.DONE, done.error
    assert [(lead, points) for lead, points, _ in await _notices(membership)] == [(3, 8)]

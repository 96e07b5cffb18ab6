"""Lapsed members: the filter (bought before, not for N brand-local days; never bought is not lapsed),
paged with last store, tier, balance and expiring points; a win-back grant reaches exactly them; the
campaign's response counts those who bought within M days after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.ledger.engine import LedgerWriter
from hub.models import JobStatus, LedgerTransaction, Membership
from tests.helpers import Api, World, make_world, pk
from tests.lifecycle.support import grant_lots, key
from tests.worker.handlers import wait_status

LAPSED = """query($b: ID!, $d: Int!, $first: Int!, $after: String) {
  lapsedMembers(brandId: $b, days: $d, first: $first, after: $after) {
    edges { node { tier lastPurchaseAt balance expiringPoints membership { id } lastPurchaseStore { id } } }
    pageInfo { hasNextPage hasPreviousPage endCursor } } }"""
RESPONSE = """query($j: ID!, $d: Int!) { winBackResponse(jobId: $j, withinDays: $d) {
  recipients purchased rateBasisPoints snapshotAt job { id status } } }"""


@pytest.fixture
async def world(api: Api) -> World:
    return await make_world(api)


async def bought(world: World, membership: str, days_ago: float) -> None:
    """A real purchase (its row and activity), then its time moved back: the test's clock."""
    assert (await world.earn(membership, 1_000, key("buy")))["userErrors"] == []
    moment = datetime.now(UTC) - timedelta(days=days_ago)
    await Membership.filter(id=pk(membership)).update(last_purchase_at=moment)


async def lapsed(world: World, days: int, first: int = 50) -> list[dict[str, Any]]:
    found, after = [], None
    while True:
        page = (
            await world.api.data(
                LAPSED, {"b": world.a.id, "d": days, "first": first, "after": after}, world.a.hq
            )
        )["lapsedMembers"]
        found += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def test_the_lapsed_filter_and_its_columns(world: World, ledger: LedgerWriter) -> None:
    gone = []
    for _ in range(3):
        membership, _, _ = await world.enroll()
        await bought(world, membership, 120)
        gone.append(membership)
    await grant_lots(ledger, gone[0], [(25, datetime.now(UTC) + timedelta(days=10)), (5, None)])
    recent, _, _ = await world.enroll()
    await bought(world, recent, 10)
    never, _, _ = await world.enroll()  # enrolled, never bought: not lapsed
    other, _, _ = await world.enroll(world.b)
    await world.earn(other, 5_000, key("b"), world.b)
    await Membership.filter(id=pk(other)).update(last_purchase_at=datetime.now(UTC) - timedelta(days=200))

    found = await lapsed(world, 90, first=2)
    assert [n["membership"]["id"] for n in found] == gone
    first = found[0]
    assert (first["tier"], first["balance"], first["expiringPoints"]) == ("normal", 40, 25)
    assert first["lastPurchaseStore"]["id"] == world.a.store_id
    assert [n["membership"]["id"] for n in await lapsed(world, 5)] == [*gone, recent]
    assert never not in [n["membership"]["id"] for n in await lapsed(world, 1)]
    # The boundary is the start of a brand-local day: lapsed for N days = no purchase since day today-N.
    tz = ZoneInfo("Asia/Shanghai")
    start = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=10)
    await Membership.filter(id=pk(recent)).update(last_purchase_at=start.astimezone(UTC))
    assert recent not in [n["membership"]["id"] for n in await lapsed(world, 10)]
    await Membership.filter(id=pk(recent)).update(
        last_purchase_at=(start - timedelta(seconds=1)).astimezone(UTC)
    )
    assert recent in [n["membership"]["id"] for n in await lapsed(world, 10)]
    for bad in (0, 3661):
        body = await world.api.gql(LAPSED, {"b": world.a.id, "d": bad, "first": 5}, world.a.hq)
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    foreign = await world.api.gql(LAPSED, {"b": world.a.id, "d": 90, "first": 5}, world.b.hq)
    assert foreign["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_win_back_grants_the_lapsed_once_and_reports_who_came_back(world: World) -> None:
    gone = []
    for _ in range(4):
        membership, _, _ = await world.enroll()
        await bought(world, membership, 100)
        gone.append(membership)
    recent, _, _ = await world.enroll()
    await bought(world, recent, 3)
    fields = "bulkGrant { job { id } recipients } created lapsedSince"
    body = {
        "brandId": world.a.id,
        "days": 60,
        "points": 50,
        "reason": "We miss you",
        "idempotencyKey": "wb-1",
    }
    bad = await world.api.mutate("startWinBack", {**body, "points": 0}, world.a.hq, fields)
    assert bad["userErrors"] == [{"code": "INVALID_INPUT", "field": "points"}]
    out = await world.api.mutate("startWinBack", body, world.a.hq, fields)
    assert out["userErrors"] == [] and out["created"] is True
    job_id = out["bulkGrant"]["job"]["id"]
    again = await world.api.mutate("startWinBack", body, world.a.hq, fields)
    assert again["created"] is False and again["bulkGrant"]["job"]["id"] == job_id
    conflict = await world.api.mutate("startWinBack", {**body, "points": 60}, world.a.hq, fields)
    assert conflict["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]

    job = await wait_status(pk(job_id), JobStatus.DONE, JobStatus.FAILED, timeout=30)
    assert job.status is JobStatus.DONE and (job.total, job.done) == (4, 4)
    granted = await LedgerTransaction.filter(idempotency_key__startswith=f"job:{pk(job_id)}:")
    assert sorted(t.membership_id for t in granted) == sorted(pk(m) for m in gone)

    # Two of them come back and buy; one member who was not in the campaign buys too.
    for membership in gone[:2]:
        assert (await world.earn(membership, 2_000, key("back")))["userErrors"] == []
    await world.earn(recent, 2_000, key("recent"))
    response = (await world.api.data(RESPONSE, {"j": job_id, "d": 30}, world.a.hq))["winBackResponse"]
    assert (response["recipients"], response["purchased"], response["rateBasisPoints"]) == (4, 2, 5000)
    foreign = await world.api.gql(RESPONSE, {"j": job_id, "d": 30}, world.b.hq)
    assert foreign["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await world.audit())["ok"]

"""Re-dating open points: HQ applies the policy in force to the points members hold, as a job that writes
one recorded `redate` transaction per changed membership; balances stay, dates change, exactly once,
against concurrent redemptions, the audit clean."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hub.ledger.engine import LedgerWriter
from hub.models import Job, JobStatus, LedgerTransaction
from tests.helpers import Api, make_world, pk
from tests.lifecycle.support import grant_lots, key, open_lots, set_policy
from tests.worker.handlers import wait_status

FIELDS = "job { id } created"


def end_of_local_day(when: datetime, days_after: int) -> datetime:
    day = when.astimezone(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=days_after + 1)
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


async def test_hq_redates_open_points_by_the_policy_in_force(api: Api, ledger: LedgerWriter) -> None:
    world = await make_world(api)
    members = [await world.enroll() for _ in range(3)]
    for membership, _, _ in members:
        await grant_lots(ledger, membership, [(60, None), (40, datetime.now(UTC) + timedelta(days=400))])
    untouched, _, _ = await world.enroll(world.b)
    await grant_lots(ledger, untouched, [(9, None)])
    assert (await set_policy(world, world.a, kind="DAYS", count=30))["userErrors"] == []

    body = {"brandId": world.a.id, "reason": "Lots earned before the policy", "idempotencyKey": "redate-1"}
    bad = await api.mutate("redateOpenPoints", {**body, "reason": " "}, world.a.hq, FIELDS)
    assert bad["userErrors"] == [{"code": "INVALID_INPUT", "field": "reason"}]
    foreign = await api.mutate("redateOpenPoints", body, world.b.hq, FIELDS)
    assert foreign["userErrors"] == [{"code": "NOT_FOUND", "field": "brandId"}]
    assert not await Job.filter(kind="lifecycle.redate", brand_id=pk(world.a.id)).exists()

    # Redemptions race the job: each draws soonest expiry first, before or after the re-dating.
    spend = [world.redeem(m, 15, key("redate-spend")) for m, _, _ in members]
    out = await api.mutate("redateOpenPoints", body, world.a.hq, FIELDS)
    assert out["userErrors"] == [] and out["created"] is True
    spent = await asyncio.gather(*spend)
    assert all(s["userErrors"] == [] for s in spent)
    again = await api.mutate("redateOpenPoints", body, world.a.hq, FIELDS)
    assert again["created"] is False and again["job"]["id"] == out["job"]["id"]
    job = await wait_status(pk(out["job"]["id"]), JobStatus.DONE, JobStatus.FAILED, timeout=30)
    assert job.status is JobStatus.DONE and job.failed == 0

    for membership, _, token in members:
        assert await world.balance(membership, token) == 85
        lots = await open_lots(membership)
        open_ = [(remaining, expires) for _, remaining, expires in lots if remaining]
        assert sum(r for r, _ in open_) == 85
        # Every open lot now carries the policy's date for its creation day (all made today).
        assert {e for _, e in open_} == {end_of_local_day(datetime.now(UTC), 30)}
        [redated] = await LedgerTransaction.filter(membership_id=pk(membership), kind="redate")
        assert redated.reason == "Lots earned before the policy"
        assert all(x["to"] is not None for x in redated.details["lots"])
    assert [lot[2] for lot in await open_lots(untouched)] == [None]  # another brand: untouched

    # Running it again changes nothing: the dates already are the policy's.
    second = await api.mutate("redateOpenPoints", {**body, "idempotencyKey": "redate-2"}, world.a.hq, FIELDS)
    job2 = await wait_status(pk(second["job"]["id"]), JobStatus.DONE, JobStatus.FAILED, timeout=30)
    assert job2.status is JobStatus.DONE and job2.done == 3
    assert await LedgerTransaction.filter(brand_id=pk(world.a.id), kind="redate").count() == 3
    assert (await world.audit())["ok"]

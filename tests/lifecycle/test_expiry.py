"""Expiry: policies set by HQ date earned lots; the job expires exactly what remains of each due lot,
once, in one transaction per membership, against concurrent redemptions; the audit stays clean."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.ledger.engine import LedgerWriter
from hub.models import Account, ChangeRecord, ExpiryPolicy, Job, JobStatus, LedgerTransaction
from hub.resolvers import expiry
from hub.worker.store import enqueue
from tests.earning.support import purchase
from tests.helpers import Api, World, make_world, pk
from tests.lifecycle.support import grant_lots, key, open_lots, set_policy
from tests.worker.handlers import wait_status

POLICY = "query($b: ID!) { expiryPolicy(brandId: $b) { version kind count period } }"


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


def end_of_local_day(zone: str, when: datetime, days_after: int) -> datetime:
    day = when.astimezone(ZoneInfo(zone)).date() + timedelta(days=days_after + 1)
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)


async def test_bad_policies_are_refused_and_write_nothing(world: World) -> None:
    before = await ExpiryPolicy.filter(brand_id=pk(world.a.id)).count()
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    cases = [
        ({"kind": "DAYS", "count": 0}, "count"),
        ({"kind": "DAYS", "count": 3661}, "count"),
        ({"kind": "MONTHS", "count": 121}, "count"),
        ({"kind": "NEVER", "count": 3}, "count"),
        ({"kind": "PERIOD_END", "count": 1}, "period"),
        ({"kind": "DAYS", "count": 3, "period": "YEAR"}, "period"),
        ({"kind": "CLEARING_DATE"}, "clearingAt"),
        ({"kind": "CLEARING_DATE", "clearingAt": past}, "clearingAt"),
        ({"kind": "DAYS", "count": 3, "clearingAt": past}, "clearingAt"),
        ({"kind": "DAYS", "count": 3, "reason": "x" * 201}, "reason"),
    ]
    for input, field in cases:
        out = await set_policy(world, world.a, **input)
        assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": field}], (input, out)
        assert out["policy"] is None
    # Another brand's HQ, and a brand that does not exist, get the same answer.
    foreign = await world.api.mutate(
        "setExpiryPolicy", {"brandId": world.a.id, "kind": "NEVER"}, world.b.hq, "policy { version }"
    )
    assert foreign["userErrors"] == [{"code": "NOT_FOUND", "field": "brandId"}]
    assert await ExpiryPolicy.filter(brand_id=pk(world.a.id)).count() == before


async def test_the_policy_in_force_at_earning_dates_the_lot_and_changes_apply_to_new_points(
    api: Api,
) -> None:
    world = await make_world(api)
    membership, _, _ = await world.enroll()
    before = await purchase(world, membership, 1_000)  # no policy yet: never expires
    assert before["userErrors"] == []

    first = await set_policy(world, world.a, kind="DAYS", count=30, reason="Points last 30 days")
    assert first["userErrors"] == [] and first["policy"]["version"] == 1
    earned = datetime.now(UTC)
    assert (await purchase(world, membership, 2_000))["userErrors"] == []
    second = await set_policy(world, world.a, kind="PERIOD_END", count=1, period="YEAR")
    assert second["policy"] == {**second["policy"], "version": 2, "kind": "PERIOD_END", "period": "YEAR"}
    assert (await purchase(world, membership, 3_000))["userErrors"] == []

    lots = await open_lots(membership)
    assert [lot[:2] for lot in lots] == [(10, 10), (20, 20), (30, 30)]
    assert lots[0][2] is None
    assert lots[1][2] == end_of_local_day("Asia/Shanghai", earned, 30)
    year = earned.astimezone(ZoneInfo("Asia/Shanghai")).year
    assert lots[2][2] == datetime(year + 2, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)
    # Each change is in the brand's change log, before and after.
    logged = await ChangeRecord.filter(brand_id=pk(world.a.id), action="expiry.setPolicy").order_by("id")
    assert [(r.before, r.after["kind"]) for r in logged] == [(None, "days"), (logged[1].before, "period_end")]
    assert logged[1].before["count"] == 30
    shown = await api.data(POLICY, {"b": world.a.id}, world.a.store)
    assert shown["expiryPolicy"] == {"version": 2, "kind": "PERIOD_END", "count": 1, "period": "YEAR"}
    assert (await api.data(POLICY, {"b": world.b.id}, world.b.hq))["expiryPolicy"] is None
    assert (await world.audit())["ok"]


async def test_due_lots_expire_exactly_once_with_their_remainders(world: World, ledger: LedgerWriter) -> None:
    membership, _, _ = await world.enroll()
    now = datetime.now(UTC)
    soon, later = now + timedelta(days=1), now + timedelta(days=40)
    await grant_lots(
        ledger, membership, [(100, soon), (50, soon + timedelta(hours=1)), (70, later), (5, None)]
    )
    # A redemption draws soonest first: 30 of the first lot.
    assert (await world.redeem(membership, 30, key("spend")))["userErrors"] == []

    until = now + timedelta(days=2)
    dry = await expiry.summary(until, pk(world.a.id))
    assert [(s.lots, s.accounts, s.amount) for s in dry] == [(2, 1, 120)]
    async with LedgerWriter() as writer:
        done = await expiry.expire_due(writer, until, brand_id=pk(world.a.id))
        assert (done.accounts, done.lots, done.amount, done.left, done.failed) == (1, 2, 120, 0, [])
        again = await expiry.expire_due(writer, until, brand_id=pk(world.a.id))
        assert (again.accounts, again.lots, again.amount) == (0, 0, 0)  # nothing is due twice

    assert await world.balance(membership) == 75
    assert [lot[:2] for lot in await open_lots(membership)] == [(100, 0), (50, 0), (70, 70), (5, 5)]
    expired = await LedgerTransaction.filter(membership_id=pk(membership), kind="expire")
    assert len(expired) == 1  # one transaction for the membership, its lots listed
    assert [(x["amount"]) for x in expired[0].details["lots"]] == [70, 50]
    assert expired[0].details["amount"] == 120
    assert (await world.audit())["ok"]


async def test_an_expiry_command_replays_and_a_changed_one_conflicts(world: World) -> None:
    membership, _, _ = await world.enroll()
    async with LedgerWriter() as writer:
        await grant_lots(writer, membership, [(40, datetime.now(UTC) + timedelta(hours=1))])
        until = datetime.now(UTC) + timedelta(hours=2)
        [account] = await expiry.due_accounts(until, 0, 10_000, pk(world.a.id))
        command = expiry.expiry_command(account, ("expiry", key("replay")), until)
        first = await writer.submit(command)
        second = await writer.submit(command)
        assert not first.replayed and second.replayed
        assert second.transaction.id == first.transaction.id
        other = expiry.expiry_command(account, ("expiry", key("other")), until)
        [refused] = await writer.submit_many([other])  # the lot is gone: its exact draw cannot cover
        assert getattr(refused, "code", None) == "ALREADY_USED"
        fewer = [replace(lot, remaining=lot.remaining - 1) for lot in account.lots]
        changed = expiry.expiry_command(replace(account, lots=fewer), command.claim.ident, until)
        [conflict] = await writer.submit_many([changed])
        assert getattr(conflict, "code", None) == "IDEMPOTENCY_CONFLICT"
    assert await world.balance(membership) == 0
    assert (await world.audit())["ok"]


async def test_redemptions_racing_the_expiry_either_spend_or_expire_each_point(
    world: World, ledger: LedgerWriter
) -> None:
    rng = random.Random(7)
    due = datetime.now(UTC) + timedelta(minutes=30)
    members = []
    for _ in range(12):
        membership, _, _ = await world.enroll()
        lots = [(rng.randint(5, 40), due - timedelta(minutes=rng.randint(0, 20))) for _ in range(4)]
        await grant_lots(ledger, membership, lots)
        members.append((membership, sum(p for p, _ in lots)))

    async def spend(membership: str) -> None:
        for _ in range(6):
            out = await world.redeem(membership, rng.randint(1, 25), key("race"))
            assert out["userErrors"] in ([], [{"code": "INSUFFICIENT_POINTS", "field": "points"}])

    async with LedgerWriter(max_batch=3) as writer:
        results = await asyncio.gather(
            expiry.expire_due(writer, due, brand_id=pk(world.a.id), chunk=5),
            *(spend(m) for m, _ in members),
        )
    done = results[0]
    assert done.failed == []
    if done.left:  # accounts that redemptions kept drawing from: the next run expires what is left
        async with LedgerWriter() as writer:
            again = await expiry.expire_due(writer, due, brand_id=pk(world.a.id))
        assert again.failed == [] and again.left == 0
    for membership, total in members:
        ms = pk(membership)
        account = await Account.get(key=f"b{pk(world.a.id)}:points:member:m{ms}")
        redeemed = -sum(
            p
            for t in await LedgerTransaction.filter(membership_id=ms, kind="redeem").prefetch_related(
                "postings"
            )
            for p in [x.amount for x in t.postings if x.account_id == account.id]
        )
        expired = sum(
            t.details["amount"] for t in await LedgerTransaction.filter(membership_id=ms, kind="expire")
        )
        # Every point was either spent or expired: nothing is left, nothing counted twice.
        assert redeemed + expired == total, (membership, redeemed, expired, total)
        assert account.balance == 0
        assert all(remaining == 0 for _, remaining, _ in await open_lots(membership))
    assert (await world.audit())["ok"]


async def test_the_scheduled_kind_expires_due_lots_as_a_job(world: World, ledger: LedgerWriter) -> None:
    membership, _, _ = await world.enroll()
    await grant_lots(ledger, membership, [(25, datetime.now(UTC) + timedelta(minutes=5))])
    until = datetime.now(UTC) + timedelta(minutes=10)
    job, _ = await enqueue(expiry.KIND, brand_id=pk(world.a.id), params={"until": until.isoformat()})
    finished = await wait_status(job.id, JobStatus.DONE, JobStatus.FAILED, timeout=30)
    assert finished.status is JobStatus.DONE, finished.error
    assert finished.done >= 1 and finished.failed == 0
    assert await world.balance(membership) == 0
    [expired] = await LedgerTransaction.filter(membership_id=pk(membership), kind="expire")
    assert expired.idempotency_key.startswith(f"job:{job.id}:a")
    assert (await Job.get(id=job.id)).total == finished.total
    assert (await world.audit())["ok"]


async def test_hub_expire_dry_run_reports_and_writes_nothing(
    world: World, ledger: LedgerWriter, backend_env: dict[str, str]
) -> None:
    membership, _, _ = await world.enroll()
    await grant_lots(ledger, membership, [(9, datetime.now(UTC) + timedelta(days=3))])
    until = (datetime.now(UTC) + timedelta(days=4)).isoformat()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "hub.cli",
            "expire",
            "--until",
            until,
            "--brand",
            str(pk(world.a.id)),
            "--dry-run",
        ],
        env={**os.environ, **backend_env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["dryRun"] and any(d["amount"] >= 9 for d in report["due"])
    assert await world.balance(membership) == 9


async def test_points_from_check_ins_events_and_grants_are_dated_by_the_policy(api: Api) -> None:
    world = await make_world(api)
    assert (await set_policy(world, world.a, kind="DAYS", count=7))["userErrors"] == []
    expected = end_of_local_day("Asia/Shanghai", datetime.now(UTC), 7)
    membership, _, token = await world.enroll()
    program = {"brandId": world.a.id, "dailyPoints": 5}
    assert (await api.mutate("setCheckInProgram", program, world.a.hq, "program { dailyPoints }"))[
        "userErrors"
    ] == []
    assert (await api.mutate("checkIn", {"membershipId": membership}, token, "created"))["userErrors"] == []
    event = {"brandId": world.a.id, "code": "lc_survey", "name": "Survey", "points": 20}
    assert (await api.mutate("createEngagementEvent", event, world.a.hq, "event { code }"))[
        "userErrors"
    ] == []
    report = {"membershipId": membership, "eventCode": "lc_survey", "idempotencyKey": key("event")}
    assert (await api.mutate("reportEngagementEvent", report, world.a.store, "period"))["userErrors"] == []
    grant = {
        "brandId": world.a.id,
        "name": "Dated grant",
        "reason": "test",
        "points": 3,
        "idempotencyKey": key("grant"),
    }
    started = await api.mutate("startBulkGrant", grant, world.a.hq, "bulkGrant { job { id } }")
    job = await wait_status(
        pk(started["bulkGrant"]["job"]["id"]), JobStatus.DONE, JobStatus.FAILED, timeout=30
    )
    assert job.status is JobStatus.DONE
    lots = await open_lots(membership)
    assert sorted(amount for amount, _, _ in lots) == [3, 5, 20]
    assert {expires for _, _, expires in lots} == {expected}
    assert (await world.audit())["ok"]

"""Bulk grants through GraphQL, run by the app's embedded worker: grants, deductions, the fixed set,
idempotent starts, bad input, and a grant racing the tills."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hub.ledger.engine import LedgerWriter
from hub.models import Job, JobStatus, LedgerTransaction, Membership, TransactionKind
from hub.resolvers.audit import audit_all
from hub.resolvers.grant_job import BulkGrantJob
from hub.resolvers.segments import Segment
from hub.worker import store
from hub.worker.handlers import JobContext
from tests.helpers import Api, Brand, World, make_brand, pk
from tests.worker.handlers import unique_kind, wait_status

GRANT = (
    "bulkGrant { name points reason snapshotAt recipients segment { tiers minPoints maxPoints }"
    " job { id kind status progress { total done failed } } } created"
)


async def start(
    api: Api, brand: Brand, key: str, points: int, segment: dict | None = None, **extra: Any
) -> dict:
    input = {
        "brandId": brand.id,
        "name": extra.pop("name", "Autumn gift"),
        "reason": extra.pop("reason", "Thanks for shopping"),
        "points": points,
        "idempotencyKey": key,
        **({"segment": segment} if segment is not None else {}),
        **extra,
    }
    return await api.mutate("startBulkGrant", input, brand.hq, GRANT)


async def finished(job_gid: str) -> Job:
    job = await wait_status(pk(job_gid), JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED, timeout=30)
    assert job.status is JobStatus.DONE, job.last_error
    return job


async def members(world: World, brand: Brand, count: int) -> list[str]:
    return [(await world.enroll(brand))[0] for _ in range(count)]


async def give(api: Api, brand: Brand, membership: str, points: int, key: str) -> None:
    out = await api.mutate(
        "adjustPoints",
        {"membershipId": membership, "points": points, "reason": "seed", "idempotencyKey": key},
        brand.hq,
        "balance",
    )
    assert out["userErrors"] == [], out


async def test_a_grant_reaches_its_segment_once_and_a_retry_returns_the_same_job(
    api: Api, world: World
) -> None:
    brand = await make_brand(api, world.platform, "Grant")
    everyone = await members(world, brand, 9)
    gold = everyone[:4]
    await Membership.filter(id__in=[pk(m) for m in gold]).update(tier="gold")

    out = await start(api, brand, "autumn-1", 25, {"tiers": ["gold"]})
    assert out["userErrors"] == [] and out["created"] is True
    grant = out["bulkGrant"]
    assert grant["job"]["kind"] == "grants.bulk" and grant["job"]["status"] in ("QUEUED", "RUNNING")
    assert (grant["points"], grant["reason"], grant["segment"]["tiers"]) == (
        25,
        "Thanks for shopping",
        ["gold"],
    )
    job_id = grant["job"]["id"]
    await finished(job_id)

    for m in everyone:
        assert await world.balance(m, brand.hq) == (25 if m in gold else 0)
    read = await api.data(
        "query($j: ID!) { bulkGrant(jobId: $j) { recipients snapshotAt job { status progress { total done failed } } } }",
        {"j": job_id},
        brand.hq,
    )
    assert read["bulkGrant"]["recipients"] == 4 and read["bulkGrant"]["snapshotAt"] is not None
    assert read["bulkGrant"]["job"] == {"status": "DONE", "progress": {"total": 4, "done": 4, "failed": 0}}
    granted = await LedgerTransaction.filter(membership_id=pk(gold[0]), kind=TransactionKind.GRANT)
    assert [(t.reason, t.idempotency_key) for t in granted] == [
        ("Thanks for shopping", f"job:{pk(job_id)}:{pk(gold[0])}")
    ]

    again = await start(api, brand, "autumn-1", 25, {"tiers": ["gold"]})
    assert again["userErrors"] == [] and again["created"] is False
    assert again["bulkGrant"]["job"]["id"] == job_id and again["bulkGrant"]["job"]["status"] == "DONE"
    other = await start(api, brand, "autumn-1", 30, {"tiers": ["gold"]})
    assert other["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    assert await Job.filter(brand_id=pk(brand.id)).count() == 1
    assert (await world.audit(brand))["ok"]


async def test_a_deduction_a_member_cannot_cover_is_a_failed_item_and_the_job_goes_on(
    api: Api, world: World
) -> None:
    brand = await make_brand(api, world.platform, "Deduct")
    everyone = await members(world, brand, 6)
    rich = everyone[::2]
    for i, m in enumerate(rich):
        await give(api, brand, m, 50, f"rich-{i}")

    out = await start(api, brand, "claw-1", -30, reason="Duplicate campaign")
    job = await finished(out["bulkGrant"]["job"]["id"])
    assert (job.total, job.done, job.failed) == (6, 3, 3)
    for m in everyone:
        assert await world.balance(m, brand.hq) == (20 if m in rich else 0)
    failures = await api.data(
        "query($j: ID!) { job(id: $j) { failedItems(first: 10) { edges { node { itemKey code } } } } }",
        {"j": out["bulkGrant"]["job"]["id"]},
        brand.hq,
    )
    items = [e["node"] for e in failures["job"]["failedItems"]["edges"]]
    poor = sorted(str(pk(m)) for m in everyone if m not in rich)
    assert sorted(i["itemKey"] for i in items) == poor
    assert {i["code"] for i in items} == {"INSUFFICIENT_POINTS"}
    assert (await world.audit(brand))["ok"]


async def test_bad_input_is_refused_and_starts_nothing(api: Api, world: World) -> None:
    brand = await make_brand(api, world.platform, "Refused")
    await members(world, brand, 2)
    cases: list[tuple[dict[str, Any], str, str | None]] = [
        ({"points": 0}, "INVALID_INPUT", "points"),
        ({"points": 1_500_000_000}, "AMOUNT_TOO_LARGE", "points"),
        ({"points": 5, "name": " "}, "INVALID_INPUT", "name"),
        ({"points": 5, "reason": "x" * 201}, "INVALID_INPUT", "reason"),
        ({"points": 5, "segment": {"joinStoreIds": [world.a.store_id]}}, "NOT_FOUND", "segment.joinStoreIds"),
        ({"points": 5, "segment": {"minPoints": 10, "maxPoints": 1}}, "INVALID_INPUT", "segment.minPoints"),
        ({"points": 5, "idempotencyKey": ""}, "INVALID_INPUT", "idempotencyKey"),
    ]
    for i, (change, code, field) in enumerate(cases):
        change = dict(change)
        points = change.pop("points")
        segment = change.pop("segment", None)
        key = change.pop("idempotencyKey", f"bad-{i}")
        out = await start(api, brand, key, points, segment, **change)
        assert out["userErrors"] == [{"code": code, "field": field}], change
    # Another brand's HQ cannot name this brand; a store may not start grants at all.
    foreign = await api.mutate(
        "startBulkGrant",
        {"brandId": brand.id, "name": "n", "reason": "r", "points": 5, "idempotencyKey": "k"},
        world.b.hq,
        "created",
    )
    assert foreign["userErrors"] == [{"code": "NOT_FOUND", "field": "brandId"}]
    clerk = await api.mutate(
        "startBulkGrant",
        {"brandId": brand.id, "name": "n", "reason": "r", "points": 5, "idempotencyKey": "k"},
        brand.store,
        "created",
    )
    assert clerk["userErrors"][0]["code"] == "PERMISSION_DENIED"
    assert await Job.filter(brand_id=pk(brand.id)).count() == 0


async def test_the_set_is_fixed_when_planned_and_a_chunk_run_twice_grants_nobody_twice(
    api: Api, world: World, ledger: LedgerWriter
) -> None:
    brand = await make_brand(api, world.platform, "Fixed")
    everyone = await members(world, brand, 7)
    params = {"points": 5, "reason": "Fixed", "segment": Segment(max_points=0).to_params()}
    # A kind no runner knows: this test drives the handler itself, as a runner would.
    job, _ = await store.enqueue(unique_kind("grant"), brand_id=pk(brand.id), params=params)
    handler = BulkGrantJob(chunk_size=3)
    ctx = JobContext(job.id, job.kind, pk(brand.id), "", params, 1, None, None, 0, 0, time.monotonic() + 60)
    ctx.ledger = ledger
    plan = await handler.plan(ctx)
    assert plan.total == 7

    # After the plan: one member leaves the segment, one joins the brand. Planning again (a worker
    # that died before the plan was recorded on the job) keeps the set fixed first.
    await give(api, brand, everyone[0], 10, "fixed-leaves")
    (late, _, _) = await world.enroll(brand)
    assert (await handler.plan(ctx)).total == 7

    cursor: dict | None = plan.cursor
    done = 0
    while cursor is not None:
        chunk = await handler.run_chunk(ctx, cursor)
        again = await handler.run_chunk(ctx, cursor)  # a crash after the ledger commit: the chunk runs again
        assert (again.cursor, again.done, again.failed) == (chunk.cursor, chunk.done, chunk.failed)
        done += chunk.done
        cursor = chunk.cursor
    assert done == 7
    assert await world.balance(everyone[0], brand.hq) == 15
    for m in everyone[1:]:
        assert await world.balance(m, brand.hq) == 5
    assert await world.balance(late, brand.hq) == 0
    grants = await LedgerTransaction.filter(kind=TransactionKind.GRANT, brand_id=pk(brand.id))
    assert sorted(g.membership_id for g in grants) == sorted(pk(m) for m in everyone)


async def test_a_grant_and_a_deduction_racing_the_tills_keep_every_balance_exact(
    api: Api, world: World
) -> None:
    brand = await make_brand(api, world.platform, "Race")
    everyone = await members(world, brand, 20)
    for i, m in enumerate(everyone):
        await give(api, brand, m, 100, f"race-seed-{i}")

    # A grant of 10 while each member buys for ¥10 (10 points) and redeems 5 twice, all at once.
    started = await start(api, brand, "race-grant", 10)
    tills = [world.earn(m, 1_000, f"race-earn-{i}", brand) for i, m in enumerate(everyone)]
    tills += [
        world.redeem(m, 5, f"race-redeem-{i}-{n}", brand.store)
        for i, m in enumerate(everyone)
        for n in (1, 2)
    ]
    results = await asyncio.gather(*tills)
    assert all(r["userErrors"] == [] for r in results)
    await finished(started["bulkGrant"]["job"]["id"])
    for m in everyone:
        assert await world.balance(m, brand.hq) == 100 + 10 + 10 - 10

    # A deduction of 70 racing a redemption of 50 from the same 110 points: exactly one of the two wins.
    deduction = await start(api, brand, "race-deduct", -70)
    redemptions = await asyncio.gather(
        *(world.redeem(m, 50, f"race-big-{i}", brand.store) for i, m in enumerate(everyone))
    )
    job = await finished(deduction["bulkGrant"]["job"]["id"])
    redeemed = [r["userErrors"] == [] for r in redemptions]
    assert all(
        r["userErrors"] in ([], [{"code": "INSUFFICIENT_POINTS", "field": "points"}]) for r in redemptions
    )
    for m, won in zip(everyone, redeemed, strict=True):
        assert await world.balance(m, brand.hq) == (60 if won else 40)
    assert (job.done, job.failed) == (20 - sum(redeemed), sum(redeemed))
    report = await audit_all(pk(brand.id))
    assert report.ok, report.violations


async def test_the_audit_catches_a_grant_outside_the_set(
    api: Api, world: World, ledger: LedgerWriter
) -> None:
    from hub.ledger.accounts import AccountRef
    from hub.ledger.commands import Command, Leg
    from hub.ledger.idempotency import IdempotencyClaim

    brand = await make_brand(api, world.platform, "Stray")
    (m, _, _) = await world.enroll(brand)
    out = await start(api, brand, "stray-1", 3, {"tiers": ["nobody"]})
    job = await finished(out["bulkGrant"]["job"]["id"])
    assert job.total == 0
    # A bug grants a member the job's set never held, under the job's claim.
    await ledger.submit(
        Command(
            TransactionKind.GRANT,
            pk(brand.id),
            (
                Leg(AccountRef.issuance_for(pk(brand.id), pk(m)), -3),
                Leg(AccountRef.member(pk(brand.id), pk(m)), 3),
            ),
            IdempotencyClaim("job", f"job:{job.id}:{pk(m)}", "x"),
            membership_id=pk(m),
        )
    )
    report = await audit_all(pk(brand.id))
    assert [v.check for v in report.violations] == ["GRANT_OUTSIDE_SET"], report.violations

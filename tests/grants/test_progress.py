"""A bulk grant's progress through the ``jobProgress`` subscription and the ``job`` query."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from strawberry.relay import GlobalID

from hub.resolvers.grant_job import BulkGrantJob
from hub.resolvers.segments import Segment
from hub.schema.context import HubContext
from hub.worker import store
from tests.helpers import Api, World, make_brand, pk
from tests.worker.handlers import Runners, unique_kind

PROGRESS = (
    "subscription($j: ID!) { jobProgress(jobId: $j) { jobId status revision updatedAt"
    " progress { total done failed } } }"
)


async def follow(app: Starlette, schema: Any, token: str, job_gid: str, first: asyncio.Event) -> list[dict]:
    """Every event of a jobProgress subscription until it ends (the job finished)."""
    services = app.state.services
    context = HubContext(
        services=services, principal=await services.authenticator.principal_for(token), credential=token
    )
    stream = await schema.subscribe(PROGRESS, variable_values={"j": job_gid}, context_value=context)
    events = []
    async with asyncio.timeout(30):
        async for result in stream:
            assert not result.errors, result.errors
            events.append(result.data["jobProgress"])
            first.set()
    return events


class SlowChunks(BulkGrantJob):
    """The hub's handler under a kind of this test's own, three members a chunk."""

    def __init__(self) -> None:
        super().__init__(chunk_size=3)
        self.kind = unique_kind("progress")


async def test_hq_follows_a_grant_chunk_by_chunk_until_it_is_done(
    api: Api, world: World, app: Starlette, schema: Any, runners: Runners
) -> None:
    brand = await make_brand(api, world.platform, "Progress")
    for _ in range(8):
        await world.enroll(brand)
    handler = SlowChunks()
    params = {"points": 2, "reason": "Progress", "segment": Segment().to_params()}
    job, _ = await store.enqueue(handler.kind, brand_id=pk(brand.id), name="Progress", params=params)
    job_gid = str(GlobalID("Job", str(job.id)))

    subscribed = asyncio.Event()
    following = asyncio.create_task(follow(app, schema, brand.hq, job_gid, subscribed))
    await asyncio.wait_for(subscribed.wait(), 5)  # the job as it is now: queued, before any worker
    await runners.start(handler)
    events = await following

    assert events[0]["status"] == "QUEUED" and events[0]["progress"]["total"] is None
    assert events[-1]["status"] == "DONE"
    assert events[-1]["progress"] == {"total": 8, "done": 8, "failed": 0}
    revisions = [int(e["revision"]) for e in events]
    assert revisions == sorted(set(revisions)), "never backwards, never twice"
    done = [int(e["progress"]["done"]) for e in events]
    assert done == sorted(done)
    assert {3, 6} <= set(done), "one event per committed chunk"
    assert all(e["jobId"] == job_gid for e in events)

    # The query answers the same as the last event.
    data = await api.data(
        "query($j: ID!) { job(id: $j) { status progress { total done failed } } }", {"j": job_gid}, brand.hq
    )
    assert data["job"] == {"status": "DONE", "progress": events[-1]["progress"]}


async def test_a_finished_job_answers_once_and_ends_and_others_see_nothing(
    api: Api, world: World, app: Starlette, schema: Any
) -> None:
    brand = await make_brand(api, world.platform, "Finished")
    await world.enroll(brand)
    out = await api.mutate(
        "startBulkGrant",
        {"brandId": brand.id, "name": "One", "reason": "r", "points": 1, "idempotencyKey": "one"},
        brand.hq,
        "bulkGrant { job { id } }",
    )
    job_gid = out["bulkGrant"]["job"]["id"]
    events = await follow(app, schema, brand.hq, job_gid, asyncio.Event())  # the embedded worker runs it
    assert events[-1]["status"] == "DONE" and events[-1]["progress"]["done"] == 1
    again = await follow(app, schema, world.platform, job_gid, asyncio.Event())
    assert len(again) == 1 and again[0] == events[-1]

    services = app.state.services
    for token in (world.b.hq, brand.store):
        context = HubContext(
            services=services, principal=await services.authenticator.principal_for(token), credential=token
        )
        stream = await schema.subscribe(PROGRESS, variable_values={"j": job_gid}, context_value=context)
        first = await anext(stream)
        assert first.errors[0].extensions["code"] in ("NOT_FOUND", "PERMISSION_DENIED")

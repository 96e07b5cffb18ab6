"""Jobs through GraphQL: job(id), jobs(brandId), node(id), cancelJob, each scoped to the caller."""

from __future__ import annotations

from typing import Any

from strawberry.relay import GlobalID

from hub.models import Job, JobItemFailure, JobStatus
from hub.schema.jobs import JobStatusEnum
from hub.worker import store
from tests.helpers import Api, World, pk
from tests.worker.handlers import unique_kind

JOB = """query($id: ID!) { job(id: $id) {
  id kind name status attempts cancelRequested error brand { id }
  progress { total done failed }
  failedItems(first: 2) { edges { node { itemKey code message } } pageInfo { hasNextPage endCursor } }
} }"""
JOBS = """query($b: ID, $s: JobStatus, $first: Int!, $after: String) {
  jobs(brandId: $b, status: $s, first: $first, after: $after) {
    edges { node { id kind status } } pageInfo { hasNextPage endCursor } } }"""
CANCEL = "cancelJob"


def gid(job: Job) -> str:
    return str(GlobalID("Job", str(job.id)))


async def _error_code(api: Api, query: str, variables: dict[str, Any], token: str | None) -> str:
    body = await api.gql(query, variables, token)
    assert body["errors"], body
    return str(body["errors"][0]["extensions"]["code"])


async def test_hq_reads_its_jobs_progress_and_failed_items(api: Api, world: World) -> None:
    kind = unique_kind("api")
    job, _ = await store.enqueue(kind, brand_id=pk(world.a.id), name="Spring grant", params={"points": 10})
    await Job.filter(id=job.id).update(status=JobStatus.RUNNING, total=40, done=12, failed=3, attempts=1)
    for item in ("7", "8", "9"):
        await JobItemFailure.create(job_id=job.id, item_key=item, code="INSUFFICIENT_POINTS", message="No.")

    node = (await api.data(JOB, {"id": gid(job)}, world.a.hq))["job"]
    assert node["kind"] == kind and node["name"] == "Spring grant" and node["status"] == "RUNNING"
    assert node["progress"] == {"total": 40, "done": 12, "failed": 3}
    assert node["brand"]["id"] == world.a.id and node["attempts"] == 1 and not node["cancelRequested"]
    failed = node["failedItems"]
    assert [e["node"]["itemKey"] for e in failed["edges"]] == ["7", "8"] and failed["pageInfo"]["hasNextPage"]
    by_node = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Job { name } } }", {"id": gid(job)}, world.a.hq
    )
    assert by_node["node"] == {"name": "Spring grant"}


async def test_a_job_of_another_brand_is_not_found_like_a_missing_one(api: Api, world: World) -> None:
    job, _ = await store.enqueue(unique_kind("foreign"), brand_id=pk(world.a.id))
    assert await _error_code(api, JOB, {"id": gid(job)}, world.b.hq) == "NOT_FOUND"
    assert await _error_code(api, JOB, {"id": str(GlobalID("Job", "999999999"))}, world.b.hq) == "NOT_FOUND"
    platform_job, _ = await store.enqueue(unique_kind("platform"))
    assert await _error_code(api, JOB, {"id": gid(platform_job)}, world.a.hq) == "NOT_FOUND"
    assert (await api.data(JOB, {"id": gid(platform_job)}, world.platform))["job"]["brand"] is None


async def test_stores_members_and_anonymous_callers_see_no_jobs(api: Api, world: World) -> None:
    job, _ = await store.enqueue(unique_kind("roles"), brand_id=pk(world.a.id))
    _, _, member = await world.enroll()
    assert await _error_code(api, JOB, {"id": gid(job)}, world.a.store) == "PERMISSION_DENIED"
    assert await _error_code(api, JOB, {"id": gid(job)}, member) == "PERMISSION_DENIED"
    assert await _error_code(api, JOB, {"id": gid(job)}, None) == "UNAUTHENTICATED"
    assert await _error_code(api, JOBS, {"first": 5}, world.a.store) == "PERMISSION_DENIED"


async def test_jobs_lists_the_callers_brand_newest_first_page_by_page(api: Api, world: World) -> None:
    kind = unique_kind("list")
    for _ in range(3):
        await store.enqueue(kind, brand_id=pk(world.a.id))
    await store.enqueue(kind, brand_id=pk(world.b.id))
    expected = [gid(j) for j in await Job.filter(brand_id=pk(world.a.id)).order_by("-id")]

    seen: list[str] = []
    after = None
    while True:
        page = (await api.data(JOBS, {"first": 2, "after": after}, world.a.hq))["jobs"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected

    # Another brand's id answers like a missing one (the policy's rule for every id).
    assert await _error_code(api, JOBS, {"b": world.b.id, "first": 5}, world.a.hq) == "NOT_FOUND"
    everything = (await api.data(JOBS, {"first": 100}, world.platform))["jobs"]["edges"]
    assert {world.a.id, world.b.id} <= {
        str(GlobalID("Brand", str(j.brand_id)))
        for j in await Job.filter(id__in=[int(GlobalID.from_id(e["node"]["id"]).node_id) for e in everything])
    }
    only_b = (await api.data(JOBS, {"b": world.b.id, "first": 100}, world.platform))["jobs"]["edges"]
    assert {e["node"]["id"] for e in only_b} == {gid(j) for j in await Job.filter(brand_id=pk(world.b.id))}
    queued = (await api.data(JOBS, {"s": "QUEUED", "first": 100}, world.a.hq))["jobs"]["edges"]
    assert queued and {e["node"]["status"] for e in queued} == {"QUEUED"}
    assert await _error_code(api, JOBS, {"first": 101}, world.a.hq) == "INVALID_INPUT"


async def test_errors_are_shown_only_when_the_job_wrote_them_for_its_readers(api: Api, world: World) -> None:
    expected, _ = await store.enqueue(unique_kind("err"), brand_id=pk(world.a.id))
    unexpected, _ = await store.enqueue(unique_kind("err"), brand_id=pk(world.a.id))
    await Job.filter(id=expected.id).update(
        status=JobStatus.FAILED, last_error="No program.", last_error_expected=True
    )
    await Job.filter(id=unexpected.id).update(
        status=JobStatus.FAILED, last_error="OperationalError: connection to 10.0.0.5 refused"
    )
    assert (await api.data(JOB, {"id": gid(expected)}, world.a.hq))["job"]["error"] == "No program."
    assert (await api.data(JOB, {"id": gid(unexpected)}, world.a.hq))["job"]["error"] == "Internal error."


async def test_hq_cancels_its_job_once_and_cannot_cancel_others_or_finished_ones(
    api: Api, world: World
) -> None:
    fields = "job { status cancelRequested }"
    job, _ = await store.enqueue(unique_kind("cancel"), brand_id=pk(world.a.id))
    refused = await api.mutate(CANCEL, {"jobId": gid(job)}, world.b.hq, fields)
    assert refused["userErrors"] == [{"code": "NOT_FOUND", "field": "jobId"}]
    assert (await Job.get(id=job.id)).status is JobStatus.QUEUED

    cancelled = await api.mutate(CANCEL, {"jobId": gid(job)}, world.a.hq, fields)
    assert cancelled == {"userErrors": [], "job": {"status": "CANCELLED", "cancelRequested": True}}
    revision = (await Job.get(id=job.id)).revision
    assert await api.mutate(CANCEL, {"jobId": gid(job)}, world.a.hq, fields) == cancelled
    assert (await Job.get(id=job.id)).revision == revision

    done, _ = await store.enqueue(unique_kind("cancel"), brand_id=pk(world.a.id))
    await Job.filter(id=done.id).update(status=JobStatus.DONE)
    finished = await api.mutate(CANCEL, {"jobId": gid(done)}, world.a.hq, fields)
    assert finished["userErrors"] == [{"code": "JOB_FINISHED", "field": "jobId"}] and finished["job"] is None
    said = await api.data(
        "mutation($i: CancelJobInput!) { cancelJob(input: $i) { userErrors { message } } }",
        {"i": {"jobId": gid(done)}},
        world.a.hq,
    )
    assert said["cancelJob"]["userErrors"] == [{"message": "This job has finished (done)."}]
    assert (await Job.get(id=done.id)).cancel_requested_at is None
    wrong_type = await api.mutate(CANCEL, {"jobId": world.a.id}, world.a.hq, fields)
    assert wrong_type["userErrors"] == [{"code": "INVALID_ID", "field": "jobId"}]


def test_the_graphql_status_enum_matches_the_model() -> None:
    assert {s.value for s in JobStatusEnum} == {s.value for s in JobStatus}

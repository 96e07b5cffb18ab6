"""A real ``hub worker`` SIGKILLed in the middle of a bulk grant: the next one resumes the same fixed set
and every member is granted exactly once.

The segment is "members with no points", which the grant itself empties: a job that re-evaluated the
segment after the crash would skip the members granted before it, so ``total`` and the grants prove
that the set fixed at plan time is the one finished. Members who join mid-job are not in it.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

from hub.auth import Principal
from hub.domain import Role
from hub.ledger.accounts import AccountRef
from hub.models import Account, GrantRecipient, Job, JobStatus, LedgerTransaction, Membership, Store
from hub.resolvers.audit import audit_all
from hub.resolvers.members import enroll_member
from hub.resolvers.segments import Segment
from hub.worker import store
from hub.worker.events import JobProgress, job_progress
from tests import conftest
from tests.grants.run_worker import KIND
from tests.helpers import new_phone
from tests.processes import WorkerProcess
from tests.worker.handlers import brand_with_members, wait_status, wait_until

pytestmark = pytest.mark.server

MEMBERS = 60
POINTS = 7


@pytest.fixture
def logs() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hub-grant-") as tmp:
        yield Path(tmp)


def _env(backend_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        **backend_env,
        "HUB_WORKER_POLL_SECONDS": "0.05",
        "HUB_WORKER_CONCURRENCY": "1",
        "HUB_WORKER_LEASE_SECONDS": "1.5",
        "GRANT_CHUNK": "10",
        **extra,
    }


async def _grants(job_id: int) -> list[LedgerTransaction]:
    return await LedgerTransaction.filter(
        idempotency_scope="job", idempotency_key__startswith=f"job:{job_id}:"
    )


async def _enroll_late(brand_id: int, count: int) -> list[int]:
    shop = await Store.get(brand_id=brand_id, code="S1")
    clerk = Principal(Role.STORE, brand_id=brand_id, store_id=shop.id)
    return [(await enroll_member(clerk, new_phone()))[0].id for _ in range(count)]


async def _follow(app: Starlette, job_id: int, seen: list[JobProgress]) -> None:
    """The job's progress events as the app's broker relays them from the worker processes."""
    async for event in job_progress(app.state.services.broker, job_id):
        seen.append(event)


async def test_a_sigkilled_bulk_grant_resumes_its_fixed_set_and_grants_each_member_once(
    backend_env: dict[str, str], logs: Path, app: Starlette
) -> None:
    brand_id = await brand_with_members(MEMBERS)
    original = sorted(await Membership.filter(brand_id=brand_id).values_list("id", flat=True))
    params = {"points": POINTS, "reason": "Welcome", "segment": Segment(max_points=0).to_params()}
    job, _ = await store.enqueue(KIND, brand_id=brand_id, name="Welcome points", params=params)
    # Across processes progress travels through Redis (the PostgreSQL run); SQLite's broker is in-process.
    seen: list[JobProgress] = []
    following = asyncio.create_task(_follow(app, job.id, seen)) if conftest.BACKEND == "postgres" else None
    env = _env(backend_env)
    first = WorkerProcess({**env, "GRANT_HANG": "25"}, logs / "first.log", module="tests.grants.run_worker")
    try:
        # Two chunks of ten are committed; the third has granted five members when the process freezes.
        async def frozen_mid_chunk() -> bool:
            return len(await _grants(job.id)) == 25 and (await Job.get(id=job.id)).done == 20

        await wait_until(frozen_mid_chunk, timeout=30)
        first.kill()
    finally:
        first.close()
    stopped = await Job.get(id=job.id)
    assert stopped.status is JobStatus.RUNNING and stopped.cursor is not None and stopped.total == MEMBERS
    late = await _enroll_late(brand_id, 3)  # they have no points: the segment matches them now

    second = WorkerProcess(env, logs / "second.log", module="tests.grants.run_worker")
    try:
        job = await wait_status(job.id, JobStatus.DONE, JobStatus.FAILED, timeout=30)
    finally:
        second.close()
    assert job.status is JobStatus.DONE, second.output()
    assert (job.total, job.done, job.failed, job.attempts) == (MEMBERS, MEMBERS, 0, 2)
    grants = await _grants(job.id)
    assert Counter(g.membership_id for g in grants) == Counter(original)
    assert (
        sorted(await GrantRecipient.filter(job_id=job.id).values_list("membership_id", flat=True)) == original
    )
    for membership_id in original:
        account = await Account.get(key=AccountRef.member(brand_id, membership_id).key)
        assert account.balance == POINTS
    assert not await LedgerTransaction.filter(membership_id__in=late).exists()
    report = await audit_all(brand_id)
    assert report.ok, report.violations
    if following is not None:  # one subscriber saw the job through the crash to its end
        await asyncio.wait_for(following, 10)
        assert seen[-1].status is JobStatus.DONE and seen[-1].done == MEMBERS, seen
        assert [e.revision for e in seen] == sorted({e.revision for e in seen})
        assert any(e.status is JobStatus.RUNNING and 0 < e.done < MEMBERS for e in seen), seen

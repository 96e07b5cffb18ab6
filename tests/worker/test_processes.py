"""Real ``hub worker`` processes killed mid-job: the job resumes and every member is granted once.

The job is ``ExampleGrant`` (``grant_example.py``): one ledger transaction per membership with the key
``job:<job id>:<membership id>``, so what is tested is the ledger's exactly-once under the runner's
resume-from-cursor.
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.ledger.accounts import AccountRef
from hub.ledger.audit import audit
from hub.models import Account, Job, JobStatus, LedgerTransaction, Membership
from hub.worker import store
from tests.processes import WorkerProcess, free_port
from tests.worker.handlers import brand_with_members, wait_status, wait_until

# The app fixture connects this process to the same database as the workers.
pytestmark = [pytest.mark.server, pytest.mark.usefixtures("app")]

MEMBERS = 60
POINTS = 7


@pytest.fixture
def logs() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hub-worker-") as tmp:
        yield Path(tmp)


def _worker_env(backend_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**backend_env, "HUB_WORKER_POLL_SECONDS": "0.05", "HUB_WORKER_CONCURRENCY": "1", **extra}


async def _grants(job_id: int) -> list[LedgerTransaction]:
    return await LedgerTransaction.filter(
        idempotency_scope="job", idempotency_key__startswith=f"job:{job_id}:"
    )


async def _assert_granted_once(brand_id: int, job: Job) -> None:
    assert job.status is JobStatus.DONE and (job.total, job.done, job.failed) == (MEMBERS, MEMBERS, 0)
    grants = await _grants(job.id)
    memberships = await Membership.filter(brand_id=brand_id).values_list("id", flat=True)
    assert Counter(g.membership_id for g in grants) == Counter(set(memberships))
    for membership_id in memberships:
        account = await Account.get(key=AccountRef.member(brand_id, membership_id).key)  # type: ignore[arg-type]
        assert account.balance == POINTS
    report = await audit(brand_id)
    assert report.ok, report.violations


async def test_a_job_survives_a_sigkill_of_its_worker_and_grants_each_member_once(
    backend_env: dict[str, str], logs: Path
) -> None:
    brand_id = await brand_with_members(MEMBERS)
    job, _ = await store.enqueue(
        "example.hanging-grant", brand_id=brand_id, name="Welcome points", params={"points": POINTS}
    )
    env = _worker_env(backend_env, HUB_WORKER_LEASE_SECONDS="1.5")
    first = WorkerProcess({**env, "EXAMPLE_HANG": "25"}, logs / "first.log")
    try:
        # Two chunks of ten are committed; the third has granted five members when the process freezes.
        async def frozen_mid_chunk() -> bool:
            return len(await _grants(job.id)) == 25 and (await Job.get(id=job.id)).done == 20

        await wait_until(frozen_mid_chunk, timeout=30)
        first.kill()
    finally:
        first.close()
    stopped = await Job.get(id=job.id)
    assert stopped.status is JobStatus.RUNNING and stopped.attempts == 1 and stopped.cursor is not None
    resume_at = stopped.cursor["after"]

    second = WorkerProcess(env, logs / "second.log")
    try:
        job = await wait_status(job.id, JobStatus.DONE, JobStatus.FAILED, timeout=30)
    finally:
        second.close()
    await _assert_granted_once(brand_id, job)
    assert job.attempts == 2
    # It resumed from the committed cursor: the five grants of the lost chunk were replayed, not repeated.
    assert re.search(
        rf"job {job.id} \(example.hanging-grant\) started: attempt 2, .*'after': {resume_at}\b",
        second.output(),
    )


async def test_sigterm_hands_the_job_back_at_once_and_the_next_worker_resumes_it(
    backend_env: dict[str, str], logs: Path
) -> None:
    brand_id = await brand_with_members(MEMBERS)
    job, _ = await store.enqueue("example.hanging-grant", brand_id=brand_id, params={"points": POINTS})
    # A long lease: the next worker could not take the job over in time; only a hand-back lets it in.
    env = _worker_env(backend_env, HUB_WORKER_LEASE_SECONDS="60", HUB_WORKER_STOP_GRACE="0.3")
    port = free_port()
    first = WorkerProcess({**env, "EXAMPLE_HANG": "5", "EXAMPLE_METRICS_PORT": str(port)}, logs / "first.log")
    try:
        await wait_until(lambda: _count_is(job.id, 5), timeout=30)
        async with httpx.AsyncClient() as client:
            exposition = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        assert 'hub_worker_jobs_started_total{kind="example.hanging-grant"} 1.0' in exposition
        assert "hub_worker_jobs_running 1.0" in exposition
        assert first.terminate() == 0
    finally:
        first.close()
    handed_back = await Job.get(id=job.id)
    assert handed_back.status is JobStatus.QUEUED and handed_back.lease_owner is None
    assert handed_back.attempts == 0 and handed_back.done == 0  # the frozen chunk was abandoned
    assert "released" in first.output()

    second = WorkerProcess(env, logs / "second.log")
    try:
        job = await wait_status(job.id, JobStatus.DONE, JobStatus.FAILED, timeout=20)
    finally:
        second.close()
    await _assert_granted_once(brand_id, job)
    assert job.attempts == 1


async def _count_is(job_id: int, count: int) -> bool:
    return len(await _grants(job_id)) == count

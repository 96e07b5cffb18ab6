"""The example handler in process: grants and deductions through the ledger, failed items recorded."""

from __future__ import annotations

from hub.ledger.accounts import AccountRef
from hub.ledger.audit import audit
from hub.models import Account, JobItemFailure, JobStatus, Membership
from hub.worker import store
from tests.worker.grant_example import ExampleGrant
from tests.worker.handlers import Runners, brand_with_members, wait_status


async def test_a_deduction_fails_the_members_without_enough_points_and_goes_on(runners: Runners) -> None:
    brand_id = await brand_with_members(12)
    await runners.start(ExampleGrant(chunk_size=5))
    outcomes = []
    for points in (20, -15, -15):  # 20, then 5, then not enough for anyone
        job, _ = await store.enqueue(ExampleGrant.kind, brand_id=brand_id, params={"points": points})
        job = await wait_status(job.id, JobStatus.DONE, JobStatus.FAILED)
        outcomes.append((job.status, job.total, job.done, job.failed))
    assert outcomes == [(JobStatus.DONE, 12, 12, 0), (JobStatus.DONE, 12, 12, 0), (JobStatus.DONE, 12, 0, 12)]

    failures = await JobItemFailure.filter(job_id=job.id)
    memberships = await Membership.filter(brand_id=brand_id).values_list("id", flat=True)
    assert sorted(f.item_key for f in failures) == sorted(str(m) for m in memberships)
    assert {f.code for f in failures} == {"INSUFFICIENT_POINTS"}
    for membership_id in memberships:
        account = await Account.get(key=AccountRef.member(brand_id, membership_id).key)  # type: ignore[arg-type]
        assert account.balance == 5
    report = await audit(brand_id)
    assert report.ok, report.violations

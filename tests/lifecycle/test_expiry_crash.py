"""A real ``hub worker`` SIGKILLed in the middle of an expiry run: the next one resumes it, and every
due lot is expired exactly once (one transaction per membership), with the audit clean."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.domain import TransactionKind
from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Leg, LotTerms
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import Account, Job, JobStatus, LedgerTransaction, Lot, Membership
from hub.resolvers.audit import audit_all
from hub.worker import store
from tests.lifecycle.run_worker import KIND
from tests.processes import WorkerProcess
from tests.worker.handlers import brand_with_members, wait_status, wait_until

pytestmark = pytest.mark.server

MEMBERS = 30


@pytest.fixture
def logs() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hub-expiry-") as tmp:
        yield Path(tmp)


async def _expiries(job_id: int) -> list[LedgerTransaction]:
    return await LedgerTransaction.filter(
        idempotency_scope="job", idempotency_key__startswith=f"job:{job_id}:", kind=TransactionKind.EXPIRE
    )


async def test_a_sigkilled_expiry_run_resumes_and_expires_each_lot_once(
    backend_env: dict[str, str], logs: Path, ledger: LedgerWriter
) -> None:
    brand_id = await brand_with_members(MEMBERS)
    members = sorted(await Membership.filter(brand_id=brand_id).values_list("id", flat=True))
    due = datetime.now(UTC) + timedelta(hours=1)
    # Two due lots and one that is not due per member.
    commands = [
        Command(
            TransactionKind.ADJUST,
            brand_id,
            (
                Leg(AccountRef.issuance_for(brand_id, m), -(points + 10)),
                Leg(AccountRef.member(brand_id, m), points, lot=LotTerms(expires_at=due)),
                Leg(AccountRef.member(brand_id, m), 10, lot=LotTerms(expires_at=due + timedelta(days=9))),
            ),
            claim("test", f"crash-lots-{brand_id}-{m}-{points}", "lot"),
            membership_id=m,
        )
        for m in members
        for points in (3, 4)
    ]
    assert all(not isinstance(r, BaseException) for r in await ledger.submit_many(commands))
    job, _ = await store.enqueue(
        KIND,
        brand_id=brand_id,
        params={"until": (due + timedelta(minutes=1)).isoformat(), "brandId": brand_id},
    )
    env = {
        **backend_env,
        "HUB_WORKER_POLL_SECONDS": "0.05",
        "HUB_WORKER_CONCURRENCY": "1",
        "HUB_WORKER_LEASE_SECONDS": "1.5",
        "EXPIRY_CHUNK": "10",  # 10 due lots: 5 memberships per chunk
    }
    first = WorkerProcess(
        {**env, "EXPIRY_HANG": "12"}, logs / "first.log", module="tests.lifecycle.run_worker"
    )
    try:
        # Two chunks of five are committed; the third has expired two members when the process freezes.
        async def frozen_mid_chunk() -> bool:
            return len(await _expiries(job.id)) == 12 and (await Job.get(id=job.id)).done == 10

        await wait_until(frozen_mid_chunk, timeout=30)
        first.kill()
    finally:
        first.close()
    assert (await Job.get(id=job.id)).status is JobStatus.RUNNING

    second = WorkerProcess(env, logs / "second.log", module="tests.lifecycle.run_worker")
    try:
        finished = await wait_status(job.id, JobStatus.DONE, JobStatus.FAILED, timeout=30)
    finally:
        second.close()
    assert finished.status is JobStatus.DONE, second.output()
    assert finished.total == MEMBERS and finished.failed == 0 and finished.attempts == 2
    expiries = await _expiries(job.id)
    assert Counter(t.membership_id for t in expiries) == Counter(members)  # one each, none twice
    for m in members:
        account = await Account.get(key=AccountRef.member(brand_id, m).key)
        assert account.balance == 20  # the two lots not yet due
        lots = await Lot.filter(account_id=account.id).order_by("id").values_list("remaining", flat=True)
        assert sorted(lots) == [0, 0, 10, 10]
    assert sum(t.details["amount"] for t in expiries) == MEMBERS * 7
    report = await audit_all(brand_id)
    assert report.ok, report.violations

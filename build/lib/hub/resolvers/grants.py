"""Bulk grants: HQ grants (or deducts) points for a segment of its members, as a background job.

``start_bulk_grant`` checks the request and creates a job of kind ``grants.bulk`` (exactly once per
idempotency key: the same key and request return the same job, another request is refused). A worker
runs it (``hub/resolvers/grant_job.py``): it fixes the segment's members at one snapshot time, then
grants each of them in chunks, each grant a ledger transaction with the claim
``job:<job id>:<membership id>``, so every member is granted exactly once however often a chunk runs
again after a crash. A deduction a member cannot cover is a failed item (INSUFFICIENT_POINTS), not a
failed job. Progress is the job's (``job(id)``, the ``jobProgress`` subscription).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from tortoise import connections
from tortoise.expressions import Subquery

from hub import policy
from hub.auth import Principal
from hub.errors import DomainError, ErrorCode, InvalidInput
from hub.events.broker import LocalBroker
from hub.ledger.audit import Violation
from hub.ledger.idempotency import claim
from hub.ledger.policy import policy as asset_policy
from hub.models import AccountKind, Asset, GrantPlan, Job, JobStatus
from hub.resolvers import access, change_log, segments
from hub.resolvers import validation as v
from hub.resolvers.segments import Segment
from hub.worker import store
from hub.worker.events import publish_progress

BULK_GRANT = "grants.bulk"
CLAIM_SCOPE = "job"  # the ledger claims of a job's items: hub.worker.handlers.JobContext.item_claim


@dataclass(frozen=True, slots=True)
class SegmentFields:
    """A segment as a client sends it (dates are brand-local days); see ``segments.segment_for``."""

    tiers: list[str] | None = None
    join_store_ids: list[int] | None = None
    last_purchase_before: date | None = None
    last_purchase_on_or_after: date | None = None
    min_points: int | None = None
    max_points: int | None = None

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "tiers": self.tiers,
            "join_store_ids": self.join_store_ids,
            "last_purchase_before": self.last_purchase_before,
            "last_purchase_on_or_after": self.last_purchase_on_or_after,
            "min_points": self.min_points,
            "max_points": self.max_points,
        }


@dataclass(frozen=True, slots=True)
class BulkGrant:
    job: Job
    points: int  # signed: negative deducts
    reason: str
    segment: Segment
    plan: GrantPlan | None  # null until a worker fixed the set


def _of(job: Job, plan: GrantPlan | None) -> BulkGrant:
    params = job.params
    return BulkGrant(
        job, int(params["points"]), str(params["reason"]), Segment.from_params(params["segment"]), plan
    )


def _points(points: int) -> int:
    points = v.nonzero(points, "points")
    largest = asset_policy(Asset.POINTS, AccountKind.MEMBER).max_amount
    if abs(points) > largest:
        raise DomainError(ErrorCode.AMOUNT_TOO_LARGE, f"One grant moves at most {largest} points.", "points")
    return points


async def start_bulk_grant(
    principal: Principal | None,
    broker: LocalBroker | None,
    brand_id: int,
    *,
    name: str,
    reason: str,
    points: int,
    segment: SegmentFields,
    idempotency_key: str,
) -> tuple[BulkGrant, bool]:
    """Create the job; ``(grant, False)`` when the same key and request created it before. ``broker``
    announces the new job to the brand's job channel (none: workers find it when they poll)."""
    p = policy.require(principal, policy.START_BULK_GRANT)
    brand = await access.get_brand(p, policy.START_BULK_GRANT, brand_id)
    key = v.idempotency_key(idempotency_key)
    name = v.text(name, "name")
    reason = v.text(reason, "reason")
    points = _points(points)
    chosen = await segments.segment_for(brand, **segment.as_kwargs())
    params = {"points": points, "reason": reason, "segment": chosen.to_params()}
    job, created = await store.enqueue(
        BULK_GRANT,
        brand_id=brand.id,
        name=name,
        params=params,
        claim=claim(p.idempotency_scope, key, "startBulkGrant", brand=brand.id, name=name, **params),
        created_by_key_id=p.key_id,
    )
    if created and broker is not None:
        await publish_progress(broker, job)
    # The change log keeps bulk grants beside manual adjustments (once, across retries of the request).
    subject = change_log.Subject("Job", job.id, brand.id)
    await change_log.record_once(p, policy.START_BULK_GRANT, subject, after={"name": name, **params})
    return await _with_plan(job), created


async def _with_plan(job: Job) -> BulkGrant:
    return _of(job, await GrantPlan.get_or_none(job_id=job.id))


async def get_bulk_grant(principal: Principal | None, job_id: int, field: str = "jobId") -> BulkGrant:
    job = await access.get_job(principal, policy.READ_JOB, job_id, field)
    if job.kind != BULK_GRANT:
        raise InvalidInput("This job is not a bulk grant.", field)
    return await _with_plan(job)


async def segment_size(principal: Principal | None, brand_id: int, segment: SegmentFields) -> int:
    """How many of the brand's members the segment matches now (what a grant started now would fix)."""
    brand = await access.get_brand(principal, policy.COUNT_SEGMENT, brand_id)
    chosen = await segments.segment_for(brand, **segment.as_kwargs())
    return await segments.count(chosen, brand.id, datetime.now(UTC))


# --- audit -------------------------------------------------------------------------------------------


def _grant_of(recipient: str) -> str:
    """The ledger transaction granting a recipient row ``r``: found by its claim, through its unique index."""
    return (
        f"ledger_transaction t ON t.idempotency_scope = '{CLAIM_SCOPE}'"
        f" AND t.idempotency_key = 'job:' || {recipient}.job_id || ':' || {recipient}.membership_id"
    )


async def audit(brand_id: int | None) -> list[Violation]:
    """Each bulk grant granted its fixed set exactly: every grant is a recipient's, with the job's points,
    and a finished job's counts are what the ledger holds. (Once per member per job is the claim's
    unique index; the ledger audit checks that one.)"""
    conn = connections.get("default")
    found: list[Violation] = []
    # Every job that fixed a set (bulk grants, and whatever else grants through this handler).
    plans = GrantPlan.all() if brand_id is None else GrantPlan.filter(brand_id=brand_id)
    jobs = Job.filter(id__in=Subquery(plans.values("job_id")), planned_at__isnull=False)
    posted = (
        "COALESCE((SELECT SUM(p.amount) FROM posting p JOIN account a ON a.id = p.account_id"
        " WHERE p.transaction_id = t.id AND a.kind = 'member' AND a.membership_id = r.membership_id), 0)"
    )
    for job in await jobs.order_by("id"):
        points = int(job.params["points"])
        _, wrong = await conn.execute_query(
            f"SELECT r.membership_id, t.id, t.kind, {posted} FROM grant_recipient r JOIN {_grant_of('r')}"
            f" WHERE r.job_id = {job.id} AND (t.kind <> 'grant' OR t.membership_id <> r.membership_id"
            f" OR {posted} <> {points}) LIMIT 100"
        )
        found += [
            Violation(
                "GRANT_MISMATCH", f"job {job.id} member {r[0]}", f"transaction {r[1]} ({r[2]}) posted {r[3]}"
            )
            for r in wrong
        ]
        _, counts = await conn.execute_query(
            f"SELECT COUNT(*), COUNT(t.id) FROM grant_recipient r LEFT JOIN {_grant_of('r')}"
            f" WHERE r.job_id = {job.id}"
        )
        recipients, granted = int(counts[0][0]), int(counts[0][1])
        status = JobStatus(job.status)
        detail = (
            f"{status}: total {job.total}, done {job.done}, failed {job.failed};"
            f" set {recipients}, granted {granted}"
        )
        if job.total != recipients or (
            (granted, recipients - granted) != (job.done, job.failed)
            if status is JobStatus.DONE
            else not job.done <= granted <= recipients
        ):
            found.append(Violation("GRANT_COUNTS", f"job {job.id}", detail))
    tbrand = f"t.brand_id = {int(brand_id)}" if brand_id is not None else "1 = 1"
    _, strays = await conn.execute_query(
        f"SELECT t.id, t.idempotency_scope || '/' || t.idempotency_key FROM ledger_transaction t"
        f" WHERE {tbrand} AND t.kind = 'grant' AND NOT EXISTS (SELECT 1 FROM grant_recipient r"
        f" WHERE r.membership_id = t.membership_id AND t.idempotency_scope = '{CLAIM_SCOPE}'"
        f" AND t.idempotency_key = 'job:' || r.job_id || ':' || r.membership_id) LIMIT 100"
    )
    found += [
        Violation(
            "GRANT_OUTSIDE_SET", f"transaction {r[0]}", f"claim {r[1]} names no member of a grant's set"
        )
        for r in strays
    ]
    return found

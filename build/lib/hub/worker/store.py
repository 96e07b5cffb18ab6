"""The job table's state changes. Every change a worker makes is fenced by its lease.

A worker's writes to a job it runs carry ``WHERE lease_owner = <me> AND status = 'running'``: once its
lease expired and another worker claimed the job, or the job was finished elsewhere, the write matches
no row and raises ``LeaseLost``, so a stalled worker that wakes up cannot overwrite the progress of the
one that took over. Progress and cursor are written in one statement, in one transaction with the
chunk's failed items.

Claiming is one statement, ``UPDATE job ... WHERE id = (SELECT ... LIMIT 1) RETURNING id``: on
PostgreSQL the inner select takes ``FOR UPDATE SKIP LOCKED``, so concurrent workers claim different
jobs without waiting on each other; SQLite has one writer, and a statement that writes first takes its
write lock at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from hub.db import sql, with_retries
from hub.errors import DomainError, ErrorCode, InvalidInput
from hub.ledger.idempotency import IdempotencyClaim
from hub.models import Job, JobItemFailure, JobStatus
from hub.worker.handlers import Chunk, LeaseLost, Plan

MAX_ERROR_TEXT = 2000


def utcnow() -> datetime:
    return datetime.now(UTC)


def _lease_until(now: datetime, lease_seconds: float) -> datetime:
    return now + timedelta(seconds=lease_seconds)


async def enqueue(
    kind: str,
    *,
    brand_id: int | None = None,
    name: str = "",
    params: dict[str, Any] | None = None,
    claim: IdempotencyClaim | None = None,
    created_by_key_id: int | None = None,
) -> tuple[Job, bool]:
    """Create a job, exactly once per claim: ``(job, True)`` when created, ``(job, False)`` when the
    same claim and request were seen before. The same key with another request is refused with
    IDEMPOTENCY_CONFLICT and nothing is written."""
    if not 0 < len(kind) <= 64:
        raise ValueError(f"job kind {kind!r} must have 1 to 64 characters")
    if len(name) > 200:
        raise InvalidInput("At most 200 characters.", "name")
    now = utcnow()

    async def create() -> Job:
        return await Job.create(
            kind=kind,
            brand_id=brand_id,
            name=name,
            params=params or {},
            idempotency_scope=claim.scope if claim else None,
            idempotency_key=claim.key if claim else None,
            request_hash=claim.request_hash if claim else None,
            created_by_id=created_by_key_id,
            run_after=now,
        )

    try:
        return await with_retries(create), True
    except IntegrityError:
        if claim is None:
            raise
        existing = await Job.get_or_none(idempotency_scope=claim.scope, idempotency_key=claim.key)
        if existing is None:
            raise
        if existing.request_hash != claim.request_hash:
            raise DomainError(
                ErrorCode.IDEMPOTENCY_CONFLICT,
                "This idempotency key was already used with a different request.",
                "idempotencyKey",
            ) from None
        return existing, False


async def claim(kinds: Sequence[str], owner: str, lease_seconds: float) -> Job | None:
    """Take the oldest due job of ``kinds``: queued and due, or running under an expired lease."""
    if not kinds:
        return None
    now = utcnow()
    # An idle worker only reads: on SQLite the claim below would take the one write lock every poll.
    due = Q(status=JobStatus.QUEUED, run_after__lte=now) | Q(
        status=JobStatus.RUNNING, lease_expires_at__lt=now
    )
    if not await Job.filter(due, kind__in=list(kinds)).exists():
        return None
    conn = connections.get("default")
    skip_locked = " FOR UPDATE SKIP LOCKED" if conn.capabilities.dialect == "postgres" else ""
    marks = ", ".join("?" * len(kinds))
    query = (
        "UPDATE job SET status = ?, lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1,"
        " revision = revision + 1, started_at = COALESCE(started_at, ?), updated_at = ?"
        " WHERE id = (SELECT id FROM job"
        f" WHERE kind IN ({marks}) AND ((status = ? AND run_after <= ?)"
        f" OR (status = ? AND lease_expires_at < ?)) ORDER BY id LIMIT 1{skip_locked})"
        " RETURNING id"
    )
    values: list[Any] = [JobStatus.RUNNING.value, owner, _lease_until(now, lease_seconds), now, now]
    values += [*kinds, JobStatus.QUEUED.value, now, JobStatus.RUNNING.value, now]

    async def run() -> list[dict[str, Any]]:
        # execute_query drops what an UPDATE returns on asyncpg; execute_query_dict always fetches.
        return await conn.execute_query_dict(sql(conn, query), values)

    rows = await with_retries(run)
    if not rows:
        return None
    return await Job.get(id=rows[0]["id"])


async def heartbeat(job_id: int, owner: str, lease_seconds: float) -> bool:
    """Extend the lease; False when this worker no longer holds it."""

    async def run() -> int:
        return await Job.filter(id=job_id, lease_owner=owner, status=JobStatus.RUNNING).update(
            lease_expires_at=_lease_until(utcnow(), lease_seconds)
        )

    return bool(await with_retries(run))


async def _fenced(job_id: int, owner: str, conn: Any, **values: Any) -> None:
    changed = (
        await Job.filter(id=job_id, lease_owner=owner, status=JobStatus.RUNNING)
        .using_db(conn)
        .update(revision=F("revision") + 1, updated_at=utcnow(), **values)
    )
    if not changed:
        raise LeaseLost(f"job {job_id}: lease lost")


async def save_plan(job_id: int, owner: str, plan: Plan, lease_seconds: float) -> Job:
    async def run() -> Job:
        async with in_transaction() as conn:
            now = utcnow()
            await _fenced(
                job_id,
                owner,
                conn,
                total=plan.total,
                cursor=plan.cursor,
                planned_at=now,
                lease_expires_at=_lease_until(now, lease_seconds),
            )
            return await Job.get(id=job_id, using_db=conn)

    return await with_retries(run)


async def commit_chunk(
    job_id: int, owner: str, chunk: Chunk, lease_seconds: float, failures_kept: int
) -> Job:
    """Count the chunk and move the cursor in one transaction; the job is done when the cursor ends.

    The first ``failures_kept`` failed items of a job are recorded; all are counted.
    """

    async def run() -> Job:
        async with in_transaction() as conn:
            now = utcnow()
            values: dict[str, Any] = {
                "done": F("done") + chunk.done,
                "failed": F("failed") + len(chunk.failed),
                "lease_expires_at": _lease_until(now, lease_seconds),
            }
            if chunk.cursor is None:
                values |= {"status": JobStatus.DONE, "finished_at": now, "lease_owner": None}
                values |= {"lease_expires_at": None}
            else:
                values["cursor"] = chunk.cursor
            # The write comes first: on SQLite it takes the write lock before anything is read.
            await _fenced(job_id, owner, conn, **values)
            job = await Job.get(id=job_id, using_db=conn)
            already_recorded = min(job.failed - len(chunk.failed), failures_kept)
            keep = chunk.failed[: max(0, failures_kept - already_recorded)]
            if keep:
                await JobItemFailure.bulk_create(
                    [
                        JobItemFailure(
                            job_id=job_id, item_key=f.item[:100], code=f.code[:64], message=f.message[:500]
                        )
                        for f in keep
                    ],
                    using_db=conn,
                )
            return job

    return await with_retries(run)


async def finish(
    job_id: int, owner: str, status: JobStatus, error: str | None = None, expected: bool = False
) -> Job:
    """End a job this worker holds as failed or cancelled."""

    async def run() -> Job:
        async with in_transaction() as conn:
            values: dict[str, Any] = {
                "status": status,
                "finished_at": utcnow(),
                "lease_owner": None,
                "lease_expires_at": None,
            }
            if error is not None:
                values |= {"last_error": error[:MAX_ERROR_TEXT], "last_error_expected": expected}
            await _fenced(job_id, owner, conn, **values)
            return await Job.get(id=job_id, using_db=conn)

    return await with_retries(run)


async def retry_later(job_id: int, owner: str, error: str, delay_seconds: float) -> Job:
    """Hand the job back after an error; it runs again from its cursor after ``delay_seconds``."""

    async def run() -> Job:
        async with in_transaction() as conn:
            await _fenced(
                job_id,
                owner,
                conn,
                status=JobStatus.QUEUED,
                lease_owner=None,
                lease_expires_at=None,
                run_after=utcnow() + timedelta(seconds=delay_seconds),
                last_error=error[:MAX_ERROR_TEXT],
                last_error_expected=False,
            )
            return await Job.get(id=job_id, using_db=conn)

    return await with_retries(run)


async def release(job_id: int, owner: str) -> Job:
    """Hand a job back at shutdown: queued again at once, and this run does not count as an attempt."""

    async def run() -> Job:
        async with in_transaction() as conn:
            await _fenced(
                job_id,
                owner,
                conn,
                status=JobStatus.QUEUED,
                lease_owner=None,
                lease_expires_at=None,
                run_after=utcnow(),
                attempts=F("attempts") - 1,
            )
            return await Job.get(id=job_id, using_db=conn)

    return await with_retries(run)


async def request_cancel(job_id: int) -> Job:
    """A queued job is cancelled at once; a running one at its next chunk boundary."""
    now = utcnow()

    async def run() -> Job:
        await Job.filter(id=job_id, status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED,
            cancel_requested_at=now,
            finished_at=now,
            updated_at=now,
            revision=F("revision") + 1,
        )
        await Job.filter(id=job_id, status=JobStatus.RUNNING, cancel_requested_at__isnull=True).update(
            cancel_requested_at=now, updated_at=now, revision=F("revision") + 1
        )
        return await Job.get(id=job_id)

    return await with_retries(run)


async def schedule_active(scope: str, key_prefix: str) -> bool:
    """Whether a job of this schedule is still queued or running."""
    return await Job.filter(
        idempotency_scope=scope,
        idempotency_key__startswith=key_prefix,
        status__in=[JobStatus.QUEUED, JobStatus.RUNNING],
    ).exists()

"""Background jobs as rows: what to do, how far it got, who is running it. No GraphQL here.

A job is claimed by one worker at a time through a lease (owner + expiry, renewed by heartbeats). Its
``cursor`` is committed with its progress after every chunk, so a job whose worker died resumes from
the last committed chunk. See ``hub/worker`` for the runner and the contract for job handlers.
"""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting for a worker (new, handed back at shutdown, or retrying after an error)
    RUNNING = "running"  # a worker holds the lease; an expired lease lets another take over
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATUSES = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED})


class Job(Model):
    """One unit of background work of a registered kind, with its progress and resume cursor."""

    id = fields.BigIntField(primary_key=True)
    # The handler that runs it (``hub/worker`` registry), e.g. ``grants.bulk``.
    kind = fields.CharField(max_length=64)
    # The brand it works for; null for platform-wide work (a schedule's expiry run over every brand).
    brand: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Brand", related_name="jobs", null=True, on_delete=fields.RESTRICT
    )
    brand_id: int | None
    name = fields.CharField(max_length=200, default="")
    params: dict = fields.JSONField(default=dict)
    status = fields.CharEnumField(JobStatus, max_length=16, default=JobStatus.QUEUED)
    # Bumped by every write to the row: progress events carry it so a reader can drop stale ones.
    revision = fields.BigIntField(default=0)
    # Items to process, known once the handler has planned the job (null before).
    total = fields.BigIntField(null=True)
    done = fields.BigIntField(default=0)
    failed = fields.BigIntField(default=0)
    planned_at = fields.DatetimeField(null=True)
    # Where the next chunk starts; committed in the same transaction as the progress it follows.
    cursor: dict | None = fields.JSONField(null=True)
    # The creator's idempotency claim: the same key and request return this job, another request is
    # refused. Schedules use the scope ``schedule`` and a key naming the period.
    idempotency_scope = fields.CharField(max_length=64, null=True)
    idempotency_key = fields.CharField(max_length=100, null=True)
    request_hash = fields.CharField(max_length=64, null=True)
    created_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.ApiKey", related_name="jobs", null=True, on_delete=fields.SET_NULL
    )
    created_by_id: int | None
    lease_owner = fields.CharField(max_length=100, null=True)
    lease_expires_at = fields.DatetimeField(null=True)
    # Claims that did not end in a clean hand-back: a crash, an error or the current run.
    attempts = fields.IntField(default=0)
    # Not claimed before this time (set to the creation time, pushed back after an error).
    run_after = fields.DatetimeField()
    cancel_requested_at = fields.DatetimeField(null=True)
    # For operators; clients see it only when ``last_error_expected`` (a handler's own message).
    last_error = fields.TextField(null=True)
    last_error_expected = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now_add=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "job"
        unique_together = (("idempotency_scope", "idempotency_key"),)
        # Claims look for queued jobs due now; HQ lists a brand's jobs newest first.
        indexes = (("status", "run_after"), ("brand_id", "id"))


class JobItemFailure(Model):
    """One item a job could not process, with the handler's code and message (capped per job)."""

    id = fields.BigIntField(primary_key=True)
    job: fields.ForeignKeyRelation[Job] = fields.ForeignKeyField(
        "models.Job", related_name="item_failures", on_delete=fields.RESTRICT
    )
    job_id: int
    item_key = fields.CharField(max_length=100)
    code = fields.CharField(max_length=64)
    message = fields.CharField(max_length=500)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "job_item_failure"
        indexes = (("job_id", "id"),)

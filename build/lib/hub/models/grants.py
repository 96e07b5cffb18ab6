"""Bulk grants: the fixed set of members a grant job covers. No GraphQL here.

A bulk grant is a job (``hub.models.jobs.Job``, kind ``grants.bulk``) whose parameters hold the points,
the reason and the segment. When a worker plans it, the segment is evaluated once, at one snapshot
time, into ``GrantRecipient`` rows, in the same database transaction as its ``GrantPlan``: the set is
fixed from then on, so a job resumed after a crash walks the same members, whatever their balances or
purchases did meanwhile.
"""

from tortoise import fields
from tortoise.models import Model


class GrantPlan(Model):
    """When a bulk grant's set was fixed and how many members it holds."""

    id = fields.BigIntField(primary_key=True)
    job: fields.OneToOneRelation = fields.OneToOneField(
        "models.Job", related_name="grant_plan", on_delete=fields.RESTRICT
    )
    job_id: int
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="grant_plans", on_delete=fields.RESTRICT
    )
    brand_id: int
    # The segment was evaluated as of this time (balances and last purchases then).
    snapshot_at = fields.DatetimeField()
    recipients = fields.BigIntField()

    class Meta:
        table = "grant_plan"


class GrantRecipient(Model):
    """One member of a bulk grant's fixed set. Its grant is the ledger transaction with the claim
    (``job``, ``job:<job id>:<membership id>``)."""

    id = fields.BigIntField(primary_key=True)
    job: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Job", related_name="grant_recipients", on_delete=fields.RESTRICT
    )
    job_id: int
    membership: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Membership", related_name="grants_received", on_delete=fields.RESTRICT
    )
    membership_id: int

    class Meta:
        table = "grant_recipient"
        # Chunks walk a job's set in membership order; the audit finds a member's grants.
        unique_together = (("job", "membership"),)
        indexes = (("membership_id",),)

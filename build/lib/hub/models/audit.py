"""What clean ledger audits proved, so that the next audit can start from there (docs/ledger.md)."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class AuditMode(StrEnum):
    FULL = "full"  # every row checked
    INCREMENTAL = "incremental"  # only what came after a checkpoint, on top of what it proved


class AuditCheckpoint(Model):
    """One clean audit of a scope (the platform, or one brand) up to its horizons.

    Every ledger row with an id at or below a horizon was checked; the rows above it were not there
    yet. ``segment_hash`` is the SHA-256 of the postings this run covered (ids in the previous
    checkpoint's posting horizon, exclusive, to this one's, inclusive; from 0 for a full run), and
    ``chain_hash`` chains it onto the previous checkpoint, so a later full audit can tell whether any
    verified posting was changed, removed or slipped in since.
    """

    id = fields.BigIntField(primary_key=True)
    # "platform" or "brand:<id>": incremental runs build on the latest checkpoint of their own scope.
    scope = fields.CharField(max_length=32)
    brand: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Brand", related_name="audit_checkpoints", null=True, on_delete=fields.RESTRICT
    )
    brand_id: int | None
    mode = fields.CharEnumField(AuditMode, max_length=16)
    # The checkpoint an incremental run built on; none for a full run, which starts a new chain.
    extends: fields.ForeignKeyNullableRelation["AuditCheckpoint"] = fields.ForeignKeyField(
        "models.AuditCheckpoint", related_name="extended_by", null=True, on_delete=fields.RESTRICT
    )
    extends_id: int | None
    posting_horizon = fields.BigIntField()
    transaction_horizon = fields.BigIntField()
    lot_horizon = fields.BigIntField()
    allocation_horizon = fields.BigIntField()
    outbox_horizon = fields.BigIntField()
    # What the scope held at the horizon: accounts, transactions and postings.
    accounts = fields.BigIntField()
    transactions = fields.BigIntField()
    postings = fields.BigIntField()
    segment_hash = fields.CharField(max_length=64)
    chain_hash = fields.CharField(max_length=64)
    started_at = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "audit_checkpoint"
        indexes = (("scope", "id"),)


class AuditAccountState(Model):
    """An account's balance and sequence as the latest checkpoint of a scope proved them.

    Only accounts with postings have a row. A full run rewrites the scope's rows; an incremental run
    updates the rows of the accounts it saw postings on. No foreign-key constraints: a full run writes
    up to one row per account in one go, and these rows are the audit's own record, not ledger data.
    """

    id = fields.BigIntField(primary_key=True)
    scope = fields.CharField(max_length=32)
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="audit_states", on_delete=fields.RESTRICT, db_constraint=False
    )
    account_id: int
    balance = fields.BigIntField()
    sequence = fields.BigIntField()
    checkpoint: fields.ForeignKeyRelation[AuditCheckpoint] = fields.ForeignKeyField(
        "models.AuditCheckpoint", related_name="states", on_delete=fields.RESTRICT, db_constraint=False
    )
    checkpoint_id: int

    class Meta:
        table = "audit_account_state"
        unique_together = (("scope", "account"),)

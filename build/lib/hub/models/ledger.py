"""The double-entry ledger: accounts, immutable transactions, postings, lots, outbox.

Only ``hub.ledger`` writes these tables. What the columns mean for each asset and account kind is
documented in docs/ledger.md and decided by ``hub.ledger.policy``.
"""

from tortoise import fields
from tortoise.models import Model

# The enums live in hub.domain (shared with the schema); re-exported here for the models' users.
from hub.domain import AccountKind, Asset, TransactionKind

__all__ = [
    "Account",
    "AccountKind",
    "Asset",
    "LedgerTransaction",
    "Lot",
    "LotAllocation",
    "OutboxEvent",
    "Posting",
    "TransactionKind",
]


class Account(Model):
    """One balance of one asset for one owner.

    ``key`` names the account uniquely and is derived from its columns by ``hub.ledger.accounts``
    (``b1:points:member:m7``, ``b1:points:issuance:3``, ``b1:stored_value:bonus:member:m7``): a unique
    constraint over nullable owner columns would not hold on PostgreSQL. The engine creates an account
    the first time a command names it.
    """

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=120, unique=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="accounts", on_delete=fields.RESTRICT
    )
    brand_id: int
    # Explicit descriptions: a new enum value then needs no migration (on SQLite Tortoise would rebuild
    # the table for a changed column comment, see the ledger_core migration).
    asset = fields.CharEnumField(Asset, max_length=16, description="hub.models.ledger.Asset")
    # The pass product for service passes, `principal`/`bonus` for stored value; empty for points.
    asset_code = fields.CharField(max_length=32, default="")
    kind = fields.CharEnumField(AccountKind, max_length=16, description="hub.models.ledger.AccountKind")
    # The owner: a membership, a store or a partnership; none for the brand's own (sharded) accounts.
    membership: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Membership", related_name="accounts", null=True, on_delete=fields.RESTRICT
    )
    membership_id: int | None
    store: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Store", related_name="accounts", null=True, on_delete=fields.RESTRICT
    )
    store_id: int | None
    # A plain id until partnerships have a table (ROADMAP: partnerships); then it gains its foreign key.
    partnership_id = fields.BigIntField(null=True)
    counterparty: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Brand", related_name="counterparty_accounts", null=True, on_delete=fields.RESTRICT
    )
    counterparty_id: int | None
    # Issuance and burn accounts are split in shards so that no single row is locked by every earn.
    shard = fields.SmallIntField(default=0)
    allow_negative = fields.BooleanField(default=False)
    balance = fields.BigIntField(default=0)
    # Number of postings on this account; each posting carries its own sequence (1, 2, 3, ...).
    sequence = fields.BigIntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "account"
        indexes = (("membership_id",), ("store_id",), ("partnership_id",))


class LedgerTransaction(Model):
    """One immutable business event. Never updated or deleted: corrections are new transactions."""

    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="transactions", on_delete=fields.RESTRICT
    )
    brand_id: int
    kind = fields.CharEnumField(
        TransactionKind, max_length=24, description="hub.models.ledger.TransactionKind"
    )
    store: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Store", related_name="transactions", null=True, on_delete=fields.RESTRICT
    )
    store_id: int | None
    membership: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Membership", related_name="transactions", null=True, on_delete=fields.RESTRICT
    )
    membership_id: int | None
    reason = fields.CharField(max_length=200, default="")
    # Who sent the key (a store, an HQ) and the key itself: a POS receipt number is unique per store.
    idempotency_scope = fields.CharField(max_length=64)
    idempotency_key = fields.CharField(max_length=100)
    request_hash = fields.CharField(max_length=64)
    # The API key that acted, when one did (a plain id: keys are revoked, never deleted).
    actor_key_id = fields.BigIntField(null=True)
    # A reversal points at what it reverses; the unique constraint refuses a second reversal.
    reverses: fields.OneToOneNullableRelation["LedgerTransaction"] = fields.OneToOneField(
        "models.LedgerTransaction", related_name="reversed_by", null=True, on_delete=fields.RESTRICT
    )
    reverses_id: int | None
    # How the amounts were derived (purchase amount, rate, rounding), shown to clients as-is.
    details: dict = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "ledger_transaction"
        unique_together = (("idempotency_scope", "idempotency_key"),)
        indexes = (("membership_id",),)


class Posting(Model):
    """One signed amount on one account. ``balance_after`` makes history self-checking.

    History pages read the unique (account, sequence) index in its own order.
    """

    id = fields.BigIntField(primary_key=True)
    transaction: fields.ForeignKeyRelation[LedgerTransaction] = fields.ForeignKeyField(
        "models.LedgerTransaction", related_name="postings", on_delete=fields.RESTRICT
    )
    transaction_id: int
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="postings", on_delete=fields.RESTRICT
    )
    account_id: int
    amount = fields.BigIntField()
    sequence = fields.BigIntField()
    balance_after = fields.BigIntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "posting"
        unique_together = (("account", "sequence"),)
        indexes = (("transaction_id",),)


class Lot(Model):
    """A batch of value credited to an account whose asset keeps lots, spent soonest expiry first.

    Open lots (``remaining > 0``) are found through a partial index in spending order (migration
    ``ledger_core``).
    """

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="lots", on_delete=fields.RESTRICT
    )
    account_id: int
    transaction: fields.ForeignKeyRelation[LedgerTransaction] = fields.ForeignKeyField(
        "models.LedgerTransaction", related_name="lots", on_delete=fields.RESTRICT
    )
    transaction_id: int
    amount = fields.BigIntField()
    remaining = fields.BigIntField()
    # On a pending account: when the worker moves the lot to the member account.
    matures_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "lot"
        indexes = (("transaction_id",),)


class LotAllocation(Model):
    """How much of one lot one debit consumed."""

    id = fields.BigIntField(primary_key=True)
    transaction: fields.ForeignKeyRelation[LedgerTransaction] = fields.ForeignKeyField(
        "models.LedgerTransaction", related_name="allocations", on_delete=fields.RESTRICT
    )
    transaction_id: int
    lot: fields.ForeignKeyRelation[Lot] = fields.ForeignKeyField(
        "models.Lot", related_name="allocations", on_delete=fields.RESTRICT
    )
    lot_id: int
    amount = fields.BigIntField()

    class Meta:
        table = "lot_allocation"
        indexes = (("transaction_id",), ("lot_id",))


class OutboxEvent(Model):
    """A balance event written with its postings: the durable record of what subscribers are owed.

    The committing process publishes it right after the commit and marks it; the relay publishes what
    a dead process left unmarked. Published rows are kept; unpublished ones are found through a partial
    index (the ledger_core migration), so the relay's scan does not grow with them.
    """

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="outbox_events", on_delete=fields.RESTRICT
    )
    account_id: int
    sequence = fields.BigIntField()
    channel = fields.CharField(max_length=64)
    payload: dict = fields.JSONField()
    created_at = fields.DatetimeField(auto_now_add=True)
    published_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox_event"
        unique_together = (("account", "sequence"),)


class LedgerCounter(Model):
    """A guard's counter (``hub.ledger.commands.Guard``): moved only by the engine, in the transaction
    of the command that moves it. Stock taken, a budget used, one member's uses of an offer."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=160, unique=True)
    value = fields.BigIntField(default=0)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "ledger_counter"

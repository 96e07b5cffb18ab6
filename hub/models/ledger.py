"""The double-entry points ledger: accounts, immutable transactions, postings, lots, outbox."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Asset(StrEnum):
    """What a balance counts. Stored value is in fen; service passes count visits of one pass type."""

    POINTS = "points"
    STORED_VALUE = "stored_value"
    SERVICE_PASS = "service_pass"


class AccountKind(StrEnum):
    MEMBER = "member"  # a membership's balance; never negative
    ISSUANCE = "issuance"  # the brand's source of value; goes negative as it issues
    BURN = "burn"  # the brand's sink for redeemed and expired value
    CLEARING = "clearing"  # what one party owes another (partnerships, franchise stores)


class TransactionKind(StrEnum):
    EARN = "earn"
    REDEEM = "redeem"
    ADJUST = "adjust"
    REVERSE = "reverse"
    # Later kinds (transfer, expire, top-up, partner redemption, ...) add values here.


class Account(Model):
    """One balance of one asset for one owner.

    ``key`` names the account uniquely (``b1:points:member:m7``, ``b1:points:issuance:3``) because
    unique constraints over nullable columns do not hold on PostgreSQL.
    """

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=120, unique=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="accounts", on_delete=fields.RESTRICT
    )
    brand_id: int
    asset = fields.CharEnumField(Asset, max_length=16)
    # The pass type for service passes; empty for points and stored value.
    asset_code = fields.CharField(max_length=32, default="")
    kind = fields.CharEnumField(AccountKind, max_length=16)
    membership: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Membership", related_name="accounts", null=True, on_delete=fields.RESTRICT
    )
    membership_id: int | None
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


class LedgerTransaction(Model):
    """One immutable business event. Never updated or deleted: corrections are new transactions."""

    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="transactions", on_delete=fields.RESTRICT
    )
    brand_id: int
    kind = fields.CharEnumField(TransactionKind, max_length=24)
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


class Posting(Model):
    """One signed amount on one account. ``balance_after`` makes history self-checking."""

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


class Lot(Model):
    """A batch of points credited to a member account, spent soonest-expiry first."""

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
    matures_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "lot"
        indexes = (("account_id", "remaining"),)


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


class OutboxEvent(Model):
    """A balance event written with its postings and relayed to the broker after commit."""

    id = fields.BigIntField(primary_key=True)
    # The posting it announces, by account and sequence (postings are inserted in one batch, so their
    # ids are not known to the engine).
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="outbox_events", on_delete=fields.RESTRICT
    )
    account_id: int
    sequence = fields.BigIntField()
    channel = fields.CharField(max_length=64)
    payload: dict = fields.JSONField()
    created_at = fields.DatetimeField(auto_now_add=True)
    published_at = fields.DatetimeField(null=True, db_index=True)

    class Meta:
        table = "outbox_event"
        unique_together = (("account", "sequence"),)

"""Records: the change log of configuration and manual adjustments, and creations made exactly once."""

from tortoise import fields
from tortoise.models import Model

from hub.domain import Role


class ChangeRecord(Model):
    """One configuration change or manual adjustment: who, when, what, and the values before and after.

    Written by ``hub.resolvers.change_log.record`` (one line in the resolver that changed something).
    Append-only: nothing updates or deletes these rows.
    """

    id = fields.BigIntField(primary_key=True)
    # The brand the change belongs to; null for platform-wide things (a platform key).
    brand: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Brand", related_name="change_records", null=True, on_delete=fields.RESTRICT
    )
    brand_id: int | None
    actor_role = fields.CharEnumField(Role, max_length=16)
    # The API key that made the change; null for the command line (the operator) and member tokens.
    actor_key_id = fields.BigIntField(null=True)
    action = fields.CharField(max_length=64)  # the policy action, e.g. brand.updateSettings
    subject_type = fields.CharField(max_length=32)  # e.g. Brand, EarnRule, ApiKey
    subject_id = fields.BigIntField(null=True)
    before: dict | None = fields.JSONField(null=True)
    after: dict | None = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "change_record"
        indexes = (("brand_id", "id"),)


class CreationClaim(Model):
    """An idempotency key of a creating mutation (createBrand, createApiKey, ...) and what it created.

    Inserted in the creation's transaction before the row it creates, so of two requests with one key
    exactly one creates; the other (and every later retry) answers the row ``result_id`` names, or
    IDEMPOTENCY_CONFLICT when its request differs (``request_hash``, hub/ledger/idempotency.py).
    """

    id = fields.BigIntField(primary_key=True)
    scope = fields.CharField(max_length=64)  # the sender, as Principal.idempotency_scope says
    key = fields.CharField(max_length=100)
    operation = fields.CharField(max_length=64)
    request_hash = fields.CharField(max_length=64)
    result_id = fields.BigIntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "creation_claim"
        unique_together = (("scope", "key"),)

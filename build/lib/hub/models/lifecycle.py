"""Points lifecycle: expiry policies, the brand's lifecycle settings, and the expiring-soon notices sent.

The lots themselves (and their ``expires_at``) are ledger rows (``hub.models.ledger.Lot``); these
tables hold what decides the dates and what was announced about them (docs/lifecycle.md).
"""

from tortoise import fields
from tortoise.models import Model

from hub.domain import ExpiryKind, ExpiryPeriod

__all__ = ["ExpiryKind", "ExpiryNotice", "ExpiryPeriod", "ExpiryPolicy", "LifecycleSettings"]


class ExpiryPolicy(Model):
    """One version of a brand's expiry policy, in force from ``effective_from`` until the next version.

    Versions are never changed: setting a policy adds one. Points earned at time t take the version in
    force at t (a purchase recorded later with an earlier purchase time too); before the first version
    points never expire.
    """

    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="expiry_policies", on_delete=fields.RESTRICT
    )
    brand_id: int
    version = fields.IntField()
    kind = fields.CharEnumField(ExpiryKind, max_length=16, description="hub.domain.ExpiryKind")
    count = fields.IntField(default=0)  # N of DAYS, MONTHS, PERIOD_END (0: the earning's own period)
    period = fields.CharField(max_length=16, default="")  # PERIOD_END: an ExpiryPeriod value
    clearing_at = fields.DatetimeField(null=True)  # CLEARING_DATE
    effective_from = fields.DatetimeField()
    reason = fields.CharField(max_length=200, default="")
    created_by_key_id = fields.BigIntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "expiry_policy"
        unique_together = (("brand", "version"),)


class LifecycleSettings(Model):
    """A brand's notice lead times and transfer limits (a brand without a row has the defaults)."""

    id = fields.BigIntField(primary_key=True)
    brand: fields.OneToOneRelation = fields.OneToOneField(
        "models.Brand", related_name="lifecycle_settings", on_delete=fields.RESTRICT
    )
    brand_id: int
    # Days before an expiry date at which the member is told (pointsExpiring); at most once each.
    notice_lead_days: list = fields.JSONField(default=list)
    transfers_enabled = fields.BooleanField(default=False)
    transfer_min = fields.BigIntField(default=1)  # the smallest transfer
    transfer_max_per_day = fields.BigIntField(null=True)  # per sender and brand-local day; null: none
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "lifecycle_settings"


class ExpiryNotice(Model):
    """One ``pointsExpiring`` notice: a membership's points expiring at one date, told at one lead time.

    The unique (membership, expires_at, lead_days) row is written before the event is published, in
    the same transaction as its outbox-like ``published_at`` mark: a restart never sends one twice.
    """

    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="expiry_notices", on_delete=fields.RESTRICT
    )
    brand_id: int
    membership: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Membership", related_name="expiry_notices", on_delete=fields.RESTRICT
    )
    membership_id: int
    expires_at = fields.DatetimeField()
    lead_days = fields.IntField()
    points = fields.BigIntField()  # what was open and due at that date when the notice was made
    created_at = fields.DatetimeField(auto_now_add=True)
    published_at = fields.DatetimeField(null=True)

    class Meta:
        table = "expiry_notice"
        unique_together = (("membership", "expires_at", "lead_days"),)

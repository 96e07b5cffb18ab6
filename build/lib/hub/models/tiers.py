"""A brand's tier ladder and the record of every tier change (docs/earning.md, "Tiers").

Every membership starts in the base tier ``normal``; a ladder lists the tiers above it with their
thresholds. ``TierChange`` rows are the history (with their reason) and what ``tierChanged`` streams.
"""

from tortoise import fields
from tortoise.models import Model

from hub.domain import TierBasis, TierDirection, TierDowngrade, TierWindow

BASE_TIER = "normal"


class TierLadder(Model):
    id = fields.BigIntField(primary_key=True)
    brand: fields.OneToOneRelation = fields.OneToOneField(
        "models.Brand", related_name="tier_ladder", on_delete=fields.RESTRICT
    )
    brand_id: int
    basis = fields.CharEnumField(TierBasis, max_length=16, description="hub.domain.TierBasis")
    window = fields.CharEnumField(TierWindow, max_length=16, description="hub.domain.TierWindow")
    rolling_days = fields.IntField(default=365)
    downgrade = fields.CharEnumField(TierDowngrade, max_length=16, description="hub.domain.TierDowngrade")
    # The last review period done for this brand ("2026", "2026-11"): the review job's bookmark.
    reviewed_period = fields.CharField(max_length=16, default="")
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "tier_ladder"


class Tier(Model):
    """One step of a ladder above the base tier: reached with ``threshold`` points (or fen)."""

    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="tiers", on_delete=fields.RESTRICT
    )
    brand_id: int
    code = fields.CharField(max_length=32)
    name = fields.CharField(max_length=64)
    threshold = fields.BigIntField()

    class Meta:
        table = "tier"
        unique_together = (("brand", "code"),)


class TierChange(Model):
    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="tier_changes", on_delete=fields.RESTRICT
    )
    brand_id: int
    membership: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Membership", related_name="tier_changes", on_delete=fields.RESTRICT
    )
    membership_id: int
    # 1, 2, 3, ... per membership, written under the membership's row lock: one change per step.
    seq = fields.IntField()
    from_tier = fields.CharField(max_length=32)
    to_tier = fields.CharField(max_length=32)
    direction = fields.CharEnumField(TierDirection, max_length=8, description="hub.domain.TierDirection")
    reason = fields.CharField(max_length=200)
    value = fields.BigIntField()  # the qualifying points or fen that decided it
    # A downgrade's review period: at most one per membership and period, however often the job runs.
    review_period = fields.CharField(max_length=16, null=True)
    # The purchase transaction that crossed the line (upgrades).
    transaction: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.LedgerTransaction", related_name="tier_changes", null=True, on_delete=fields.RESTRICT
    )
    transaction_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "tier_change"
        unique_together = (("membership", "seq"), ("membership", "review_period"))

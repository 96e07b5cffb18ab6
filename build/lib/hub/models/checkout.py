"""A brand's spending rules: how points pay at checkout, stored-value bonus tiers, refund clawback.

One row per brand, written by HQ (``updateSpendingRules``); a brand without one has the defaults below
(docs/spending.md, "Checkout rules"). What points are worth is the brand's ``point_value_points`` /
``point_value_fen`` (hub/models/brands.py).
"""

from tortoise import fields
from tortoise.models import Model

from hub.domain import ClawbackPolicy

__all__ = ["ClawbackPolicy", "SpendingRules"]


class SpendingRules(Model):
    id = fields.BigIntField(primary_key=True)
    brand: fields.OneToOneRelation = fields.OneToOneField(
        "models.Brand", related_name="spending_rules", on_delete=fields.RESTRICT
    )
    brand_id: int
    # Points at checkout: a bill below the minimum takes none; at most this share of what is left to
    # pay after a coupon (basis points); in whole steps of this many fen (100: whole yuan).
    points_min_bill_fen = fields.BigIntField(default=0)
    points_max_share_bp = fields.IntField(default=10_000)
    points_step_fen = fields.IntField(default=100)
    # Bill line categories points may not pay for.
    excluded_categories: list = fields.JSONField(default=list)
    # Stored-value top-up bonus tiers: [{"minFen", "bonusFen", "bonusPoints"}], highest reached applies.
    top_up_tiers: list = fields.JSONField(default=list)
    # An explicit description: a new policy then needs no migration.
    refund_clawback = fields.CharEnumField(
        ClawbackPolicy,
        max_length=24,
        default=ClawbackPolicy.WITHIN_BALANCE,
        description="hub.domain.ClawbackPolicy",
    )
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "spending_rules"

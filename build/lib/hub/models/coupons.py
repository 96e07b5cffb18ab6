"""Coupon templates: what a brand's coupons take off a bill, when and where they may be used.

A coupon itself is not a row here: it is one unit of the ledger asset ``coupon`` (asset code = the
template's ``code``), a lot of 1 on the member's coupon account whose expiry is the coupon's. Issuing
one credits that lot; using one draws exactly it. So a coupon is issued and used inside the ledger
transaction that pays for it, and a second use of the same coupon fails in the engine (ALREADY_USED)
however many tills try at once (docs/spending.md, "Coupons").
"""

from tortoise import fields
from tortoise.models import Model

from hub.domain import CouponKind

__all__ = ["CouponKind", "CouponTemplate"]


class CouponTemplate(Model):
    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="coupon_templates", on_delete=fields.RESTRICT
    )
    brand_id: int
    # The asset code of its coupons (b1:coupon:<code>:member:m7): fixed once created.
    code = fields.CharField(max_length=32)
    name = fields.CharField(max_length=100)
    # An explicit description: a new kind then needs no migration.
    kind = fields.CharEnumField(CouponKind, max_length=16, description="hub.domain.CouponKind")
    amount_off_fen = fields.BigIntField(default=0)  # AMOUNT_OFF
    min_bill_fen = fields.BigIntField(default=0)  # every kind: the bill must reach it
    percent_off_bp = fields.IntField(default=0)  # PERCENT_OFF, in basis points (1500 = 15 %)
    max_off_fen = fields.BigIntField(null=True)  # PERCENT_OFF and FREE_ITEM: the cap, if any
    free_item_sku = fields.CharField(max_length=64, default="")  # FREE_ITEM
    # Validity: a window, and/or a number of days from issue; a coupon expires at the earlier end.
    valid_from = fields.DatetimeField(null=True)
    valid_until = fields.DatetimeField(null=True)
    valid_days = fields.IntField(null=True)
    # Store ids where its coupons may be used; empty: every store of the brand.
    store_ids: list = fields.JSONField(default=list)
    points_price = fields.BigIntField(null=True)  # members may buy one for this many points; null: not sold
    quantity = fields.BigIntField(null=True)  # how many may ever be issued; null: no limit
    active = fields.BooleanField(default=True)  # inactive: no more issued (issued ones stay usable)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "coupon_template"
        unique_together = (("brand", "code"),)

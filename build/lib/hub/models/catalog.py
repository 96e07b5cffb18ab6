"""Gift catalog: items HQ offers for points (and an optional cash part), and members' orders.

An order's points move in one ledger transaction (kind ``gift_order``) that also counts the item's
stock and the member's limit in ledger guards; the ``gift_order`` row is the domain's record of it,
written after the commit from the transaction's details and keyed by it (a retry finds the same row).
Cancelling returns the points in one more transaction (``gift_order_cancel``) whose idempotency key is
the order's, so they come back once (docs/spending.md, "Gift catalog").
"""

from tortoise import fields
from tortoise.models import Model

from hub.domain import GiftOrderStatus, LimitPeriod

__all__ = ["GiftItem", "GiftOrder", "GiftOrderStatus"]


class GiftItem(Model):
    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="gift_items", on_delete=fields.RESTRICT
    )
    brand_id: int
    code = fields.CharField(max_length=32)  # the brand's natural key for it
    name = fields.CharField(max_length=100)
    image_url = fields.CharField(max_length=500, default="")
    points_price = fields.BigIntField()
    cash_fen = fields.BigIntField(default=0)  # paid at the store on collection ("2,000 points + ¥9.90")
    # How many may be ordered in all (cancelled orders give theirs back); null: unlimited.
    stock = fields.BigIntField(null=True)
    # At most this many orders per member in each period (brand-local); null: no limit.
    limit_per_member = fields.IntField(null=True)
    limit_period = fields.CharEnumField(
        LimitPeriod, max_length=8, default=LimitPeriod.TOTAL, description="hub.domain.LimitPeriod"
    )
    valid_from = fields.DatetimeField(null=True)
    valid_until = fields.DatetimeField(null=True)
    # Stores where it is collected; empty: every store of the brand.
    store_ids: list = fields.JSONField(default=list)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "gift_item"
        unique_together = (("brand", "code"),)


class GiftOrder(Model):
    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="gift_orders", on_delete=fields.RESTRICT
    )
    brand_id: int
    item: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.GiftItem", related_name="orders", on_delete=fields.RESTRICT
    )
    item_id: int
    membership: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Membership", related_name="gift_orders", on_delete=fields.RESTRICT
    )
    membership_id: int
    # The store where it is collected (fulfilled).
    store: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Store", related_name="gift_orders", on_delete=fields.RESTRICT
    )
    store_id: int
    status = fields.CharEnumField(
        GiftOrderStatus,
        max_length=12,
        default=GiftOrderStatus.PLACED,
        description="hub.domain.GiftOrderStatus",
    )
    points = fields.BigIntField()  # paid (0 for a lottery prize)
    cash_fen = fields.BigIntField(default=0)  # due at collection
    # The guard keys its transaction moved: the item's stock counter, the member's period counter.
    stock_key = fields.CharField(max_length=160)
    limit_key = fields.CharField(max_length=160, default="")
    transaction: fields.OneToOneRelation = fields.OneToOneField(
        "models.LedgerTransaction", related_name="gift_order", on_delete=fields.RESTRICT
    )
    transaction_id: int
    cancel_transaction: fields.OneToOneNullableRelation = fields.OneToOneField(
        "models.LedgerTransaction", related_name="gift_order_cancelled", null=True, on_delete=fields.RESTRICT
    )
    cancel_transaction_id: int | None
    fulfilled_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    cancel_reason = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "gift_order"
        indexes = (("brand_id", "store_id", "status"),)

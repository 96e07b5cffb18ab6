from tortoise import fields
from tortoise.models import Model


class Brand(Model):
    """A chain with its own points program. Points belong to the brand, not to a store."""

    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=100)
    # Base earn rate as an exact ratio: ``earn_points`` points for every ``earn_unit_fen`` fen spent,
    # rounded down per purchase (1 point per ¥1 is 1/100; 1 point per ¥10 is 1/1000).
    earn_points = fields.IntField(default=1)
    earn_unit_fen = fields.IntField(default=100)
    # The brand's own clock: check-in days, periods, expiry at month or year end, report periods.
    timezone = fields.CharField(max_length=64, default="Asia/Shanghai")
    # What points are worth, as an exact ratio: ``point_value_points`` points are worth
    # ``point_value_fen`` fen (100 points = ¥1 by default). Checkout, liability and clearing use it.
    point_value_points = fields.IntField(default=100)
    point_value_fen = fields.IntField(default=100)
    # Earned points are held pending for this many days (a return window; 0: available at once).
    pending_days = fields.IntField(default=0)
    # Bumped with every change to the brand's earning rules or tier ladder, in the same transaction:
    # each process keeps the compiled rule book of a brand while this number is unchanged.
    rules_version = fields.BigIntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)

    stores: fields.ReverseRelation["Store"]

    class Meta:
        table = "brand"


class Store(Model):
    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation[Brand] = fields.ForeignKeyField(
        "models.Brand", related_name="stores", on_delete=fields.RESTRICT
    )
    brand_id: int
    name = fields.CharField(max_length=100)
    code = fields.CharField(max_length=32)
    # Franchised stores are separate parties for clearing (ROADMAP: partnerships and clearing).
    is_franchise = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "store"
        unique_together = (("brand", "code"),)

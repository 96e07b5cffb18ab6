"""Lotteries (积分抽奖): draws HQ configures, their prizes, and every play's outcome.

A play is one ledger transaction (kind ``lottery_play``): its cost in points, and the prize it won
(points, a coupon, a gift order, or nothing) with ledger guards counting the prize's quantity, the
draw's prize budget and the member's plays that day. The ``lottery_play`` row records the outcome,
written after the commit from the transaction's details and keyed by it (docs/spending.md, "Lottery").
"""

from tortoise import fields
from tortoise.models import Model

from hub.domain import PrizeKind

__all__ = ["Lottery", "LotteryPlay", "LotteryPrize", "PrizeKind"]


class Lottery(Model):
    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="lotteries", on_delete=fields.RESTRICT
    )
    brand_id: int
    code = fields.CharField(max_length=32)  # the brand's natural key for it
    name = fields.CharField(max_length=100)
    cost_points = fields.BigIntField()  # one play costs this many points
    plays_per_day = fields.IntField(null=True)  # per member and brand-local day; null: no limit
    # The most the prizes awarded may be worth in all, in points (each prize's value_points); null: none.
    budget_points = fields.BigIntField(null=True)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "lottery"
        unique_together = (("brand", "code"),)


class LotteryPrize(Model):
    """One prize of a lottery: drawn with probability weight / (sum of the lottery's weights)."""

    id = fields.BigIntField(primary_key=True)
    lottery: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Lottery", related_name="prizes", on_delete=fields.RESTRICT
    )
    lottery_id: int
    position = fields.IntField()  # its place in the list HQ gave
    name = fields.CharField(max_length=100)
    kind = fields.CharEnumField(PrizeKind, max_length=8, description="hub.domain.PrizeKind")
    weight = fields.IntField()
    quantity = fields.BigIntField(null=True)  # at most this many awarded; null: no limit
    points = fields.BigIntField(default=0)  # POINTS: points won
    coupon_template: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.CouponTemplate", related_name="lottery_prizes", null=True, on_delete=fields.RESTRICT
    )
    coupon_template_id: int | None
    gift_item: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.GiftItem", related_name="lottery_prizes", null=True, on_delete=fields.RESTRICT
    )
    gift_item_id: int | None
    value_points = fields.BigIntField(default=0)  # what it counts against the budget

    class Meta:
        table = "lottery_prize"
        unique_together = (("lottery", "position"),)


class LotteryPlay(Model):
    """One play and its outcome."""

    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="lottery_plays", on_delete=fields.RESTRICT
    )
    brand_id: int
    lottery: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Lottery", related_name="plays", on_delete=fields.RESTRICT
    )
    lottery_id: int
    membership: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Membership", related_name="lottery_plays", on_delete=fields.RESTRICT
    )
    membership_id: int
    # The prize won; null: nothing (no-win drawn, or the prize drawn had run out: exhausted_prize).
    prize: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.LotteryPrize", related_name="plays", null=True, on_delete=fields.RESTRICT
    )
    prize_id: int | None
    drawn_prize: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.LotteryPrize", related_name="drawn_plays", null=True, on_delete=fields.RESTRICT
    )
    drawn_prize_id: int | None  # what the draw picked (differs from prize when it had run out)
    cost_points = fields.BigIntField()
    points_won = fields.BigIntField(default=0)
    value_points = fields.BigIntField(default=0)  # counted against the budget
    limit_key = fields.CharField(max_length=160, default="")
    transaction: fields.OneToOneRelation = fields.OneToOneField(
        "models.LedgerTransaction", related_name="lottery_play", on_delete=fields.RESTRICT
    )
    transaction_id: int
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "lottery_play"

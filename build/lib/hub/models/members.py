from tortoise import fields
from tortoise.models import Model


class Member(Model):
    """A person, known across brands by a normalised phone number (E.164 without the plus)."""

    id = fields.BigIntField(primary_key=True)
    phone = fields.CharField(max_length=20, unique=True)
    # Personal data (PIPL): the birthday bonus reads it; erasure clears it. Kept here and nowhere else.
    birthday = fields.DateField(null=True)
    # Erasure (PIPL, docs/records.md): a pseudonymous person has no phone (``phone`` holds a random
    # placeholder no phone number can equal), no birthday, and this time set.
    erased_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "member"


class Membership(Model):
    """A member's place in one brand's program."""

    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="memberships", on_delete=fields.RESTRICT
    )
    member_id: int
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="memberships", on_delete=fields.RESTRICT
    )
    brand_id: int
    tier = fields.CharField(max_length=32, default="normal")
    join_store: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Store", related_name="joined_memberships", null=True, on_delete=fields.RESTRICT
    )
    join_store_id: int | None
    referrer: fields.ForeignKeyNullableRelation["Membership"] = fields.ForeignKeyField(
        "models.Membership", related_name="referrals", null=True, on_delete=fields.RESTRICT
    )
    referrer_id: int | None
    # Member activity, kept by the purchase path (hub/resolvers/purchases.py) after each purchase's
    # commit, idempotently: a retry changes nothing, and an earlier purchase time never moves them back.
    # Segments (bulk grants), lapsed members and reports read them.
    last_purchase_at = fields.DatetimeField(null=True)
    last_purchase_store: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Store", related_name="last_purchase_memberships", null=True, on_delete=fields.RESTRICT
    )
    last_purchase_store_id: int | None
    lifetime_spend_fen = fields.BigIntField(default=0)  # fen of every purchase that earned
    # When the person's data was erased from this membership (it then belongs to a pseudonymous person).
    erased_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "membership"
        unique_together = (("member", "brand"),)
        # A brand's members by their latest purchase: segments, lapsed members.
        indexes = (("brand_id", "last_purchase_at"),)

"""Referral codes and referrals (docs/earning.md, "Referral").

A membership's code is made on request; a new membership that signs up with it gets a ``Referral``
row (one per referee). Its rewards are ledger transactions with idempotency keys naming the referral,
so each side is rewarded once whatever happens to purchases afterwards.
"""

from tortoise import fields
from tortoise.models import Model

from hub.domain import ReferralStatus


class ReferralCode(Model):
    id = fields.BigIntField(primary_key=True)
    code = fields.CharField(max_length=16, unique=True)
    membership: fields.OneToOneRelation = fields.OneToOneField(
        "models.Membership", related_name="referral_code", on_delete=fields.RESTRICT
    )
    membership_id: int
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="referral_codes", on_delete=fields.RESTRICT
    )
    brand_id: int
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "referral_code"


class Referral(Model):
    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="referrals", on_delete=fields.RESTRICT
    )
    brand_id: int
    referrer: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Membership", related_name="referrals_made", on_delete=fields.RESTRICT
    )
    referrer_id: int
    referee: fields.OneToOneRelation = fields.OneToOneField(
        "models.Membership", related_name="referral", on_delete=fields.RESTRICT
    )
    referee_id: int
    status = fields.CharEnumField(ReferralStatus, max_length=16, description="hub.domain.ReferralStatus")
    # Set when rewarded: the qualifying purchase and the two reward transactions (null: none posted,
    # e.g. the referrer's cap was reached).
    purchase_transaction_id = fields.BigIntField(null=True)
    referrer_transaction_id = fields.BigIntField(null=True)
    referee_transaction_id = fields.BigIntField(null=True)
    referrer_capped = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    rewarded_at = fields.DatetimeField(null=True)

    class Meta:
        table = "referral"
        indexes = (("referrer_id",),)

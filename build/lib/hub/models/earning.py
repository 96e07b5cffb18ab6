"""Earning rules (versioned) and the purchases they were applied to.

A rule is an identity (``EarnRule``: its brand and kind); what it says lives in append-only versions
(``EarnRuleVersion``): an edit is a new version with an effective time, so a purchase is evaluated
against the versions in force at its own time (docs/earning.md). A ``Purchase`` row is written after
the ledger commit of the purchase's transaction, keyed uniquely by it: a retry finds it.
"""

from tortoise import fields
from tortoise.models import Model

from hub.domain import EarnRuleKind

__all__ = ["EarnRule", "EarnRuleKind", "EarnRuleVersion", "Purchase", "PurchaseRefund"]


class EarnRule(Model):
    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="earn_rules", on_delete=fields.RESTRICT
    )
    brand_id: int
    # The kind never changes across versions (a new kind is a new rule).
    kind = fields.CharEnumField(EarnRuleKind, max_length=32, description="hub.domain.EarnRuleKind")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "earn_rule"


class EarnRuleVersion(Model):
    """What a rule says from ``effective_from`` on, until a later version of the same rule."""

    id = fields.BigIntField(primary_key=True)
    rule: fields.ForeignKeyRelation[EarnRule] = fields.ForeignKeyField(
        "models.EarnRule", related_name="versions", on_delete=fields.RESTRICT
    )
    rule_id: int
    # Denormalised so that a brand's whole rule book is one indexed read.
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="earn_rule_versions", on_delete=fields.RESTRICT
    )
    brand_id: int
    version = fields.IntField()  # 1, 2, 3, ... per rule
    effective_from = fields.DatetimeField()
    active = fields.BooleanField(default=True)  # False: the rule is retired from effective_from on
    name = fields.CharField(max_length=100)
    position = fields.IntField(default=0)  # evaluation order (then the rule id)
    # Conditions and effect in canonical JSON (hub/resolvers/earn_rules.py validates and compiles it).
    spec: dict = fields.JSONField(default=dict)
    created_by_key_id = fields.BigIntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "earn_rule_version"
        unique_together = (("rule", "version"),)
        indexes = (("brand_id",),)


class Purchase(Model):
    """One purchase that went through the earn evaluation: what tiers, referrals and reports count."""

    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="purchases", on_delete=fields.RESTRICT
    )
    brand_id: int
    membership: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Membership", related_name="purchases", on_delete=fields.RESTRICT
    )
    membership_id: int
    store: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Store", related_name="purchases", null=True, on_delete=fields.RESTRICT
    )
    store_id: int | None
    # The ledger transaction that posted the points: at most one purchase row each.
    transaction: fields.OneToOneRelation = fields.OneToOneField(
        "models.LedgerTransaction", related_name="purchase", on_delete=fields.RESTRICT
    )
    transaction_id: int
    amount_fen = fields.BigIntField()  # the amount that earned (the cash part at checkout)
    points = fields.BigIntField()  # every point the purchase earned, pending ones included
    pending = fields.BigIntField(default=0)  # of which held pending for the return window
    purchased_at = fields.DatetimeField()  # the purchase's own time (a late upload is in the past)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "purchase"
        indexes = (("membership_id", "purchased_at"),)


class PurchaseRefund(Model):
    """A refund of (part of) a purchase, as the refund's writer reports it (once per refund
    transaction): tier qualification counts purchases net of these."""

    id = fields.BigIntField(primary_key=True)
    purchase: fields.ForeignKeyRelation[Purchase] = fields.ForeignKeyField(
        "models.Purchase", related_name="refunds", on_delete=fields.RESTRICT
    )
    purchase_id: int
    membership: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Membership", related_name="purchase_refunds", on_delete=fields.RESTRICT
    )
    membership_id: int
    transaction: fields.OneToOneRelation = fields.OneToOneField(
        "models.LedgerTransaction", related_name="purchase_refund", on_delete=fields.RESTRICT
    )
    transaction_id: int
    amount_fen = fields.BigIntField()
    points = fields.BigIntField()  # earned points taken back
    purchased_at = fields.DatetimeField()  # the refunded purchase's time: it leaves that period
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "purchase_refund"
        indexes = (("membership_id", "purchased_at"),)

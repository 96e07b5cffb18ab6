"""Franchise clearing inside one brand: who funds the points a store issued and another accepted.

``ClearingPolicy`` is a brand's choice (none: no clearing). ``ClearingEntry`` is one (redemption,
issuing store) pair a clearing transaction settled, written right after that ledger transaction and
checked against it by the audit. See docs/partnerships.md, "Franchise clearing".
"""

from tortoise import fields
from tortoise.models import Model

from hub.domain import ClearingFunding

__all__ = ["ClearingEntry", "ClearingPolicy"]


class ClearingPolicy(Model):
    id = fields.BigIntField(primary_key=True)
    brand: fields.OneToOneRelation = fields.OneToOneField(
        "models.Brand", related_name="clearing_policy", on_delete=fields.RESTRICT
    )
    brand_id: int
    funding = fields.CharEnumField(ClearingFunding, max_length=16, description="hub.domain.ClearingFunding")
    issuer_share_bp = fields.IntField(default=10_000)  # SPLIT: the issuing store's share, basis points
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "clearing_policy"


class ClearingEntry(Model):
    """Points one store issued and another accepted in one redemption, at the brand's point value."""

    id = fields.BigIntField(primary_key=True)
    brand_id = fields.BigIntField()
    redemption_id = fields.BigIntField()  # the ledger transaction that spent the points
    clearing_id = fields.BigIntField()  # the ledger transaction that cleared them
    issuer_store_id = fields.BigIntField()
    redeemer_store_id = fields.BigIntField()
    points = fields.BigIntField()
    fen = fields.BigIntField()  # what the accepting store is owed
    issuer_fen = fields.BigIntField()  # of which the issuing store pays (the rest: HQ)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "clearing_entry"
        unique_together = (("redemption_id", "issuer_store_id"),)
        indexes = (("brand_id", "issuer_store_id"), ("brand_id", "redeemer_store_id"))

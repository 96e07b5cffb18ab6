"""Service passes (次卡): pass products HQ sells ("10 car washes", valid 180 days).

A pass itself is not a row here: it is one lot of the ledger asset ``service_pass`` (asset code = the
product's ``code``) on the member's account, of ``uses`` units, expiring with the pass. A sale credits
that lot in the transaction that takes the payment; each visit draws one unit of exactly that lot, so
the last use goes to one visit however many tills try at once (docs/spending.md, "Service passes").
"""

from tortoise import fields
from tortoise.models import Model

__all__ = ["PassProduct"]


class PassProduct(Model):
    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="pass_products", on_delete=fields.RESTRICT
    )
    brand_id: int
    # The asset code of its passes (b1:service_pass:<code>:member:m7): fixed once created.
    code = fields.CharField(max_length=32)
    name = fields.CharField(max_length=100)
    uses = fields.IntField()  # uses one pass holds: fixed once created (sold passes carry it)
    valid_days = fields.IntField()  # usable through the brand-local day this many days after the sale
    price_fen = fields.BigIntField(null=True)  # sold for money (cash at a store, or stored value); null: not
    points_price = fields.BigIntField(null=True)  # sold for points; null: not
    active = fields.BooleanField(default=True)  # inactive: no more sold (sold passes stay usable)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "pass_product"
        unique_together = (("brand", "code"),)

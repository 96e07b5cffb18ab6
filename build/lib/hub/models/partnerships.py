"""Partnerships: one brand's points buy another brand's offers, and the books between them.

A ``Partnership`` is one direction: members of the *points brand* (A) spend A's points on offers of
the *offer brand* (B) at B's stores, and A owes B an agreed price per redemption. Both directions at
once are two partnerships with independent terms. Terms are versioned (``PartnershipTerms``): a
version is in force once both HQs accepted it, and a redemption records the version it used.

The ledger holds the money and the points (``hub/ledger``); the rows here are the agreement, the
member's one-time codes, one line per redemption or void (written right after its ledger
transaction, and checked against it by the audit), and the settlement statements. See
docs/partnerships.md.
"""

from tortoise import fields
from tortoise.models import Model

from hub.domain import PartnerOfferKind, PartnershipStatus, SettlementPeriod, StatementStatus, TermsStatus

__all__ = [
    "PartnerLine",
    "PartnerOffer",
    "Partnership",
    "PartnershipStatement",
    "PartnershipTerms",
    "RedemptionCode",
]


class Partnership(Model):
    id = fields.BigIntField(primary_key=True)
    # Whose points are spent (A), and whose offers they buy at whose stores (B).
    points_brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="partnerships_as_points", on_delete=fields.RESTRICT
    )
    points_brand_id: int
    offer_brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="partnerships_as_offers", on_delete=fields.RESTRICT
    )
    offer_brand_id: int
    proposed_by_id = fields.BigIntField()  # the brand whose HQ proposed it
    name = fields.CharField(max_length=100)
    status = fields.CharEnumField(
        PartnershipStatus, max_length=16, description="hub.domain.PartnershipStatus"
    )
    # The version in force (accepted by both HQs); null until the first is accepted.
    current_version = fields.IntField(null=True)
    # A secret of this partnership: the pseudonymous member id B sees is an HMAC under it.
    pseudonym_key = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "partnership"


class PartnershipTerms(Model):
    """One version of a partnership's terms: in force once both HQs accepted it."""

    id = fields.BigIntField(primary_key=True)
    partnership: fields.ForeignKeyRelation[Partnership] = fields.ForeignKeyField(
        "models.Partnership", related_name="versions", on_delete=fields.RESTRICT
    )
    partnership_id: int
    version = fields.IntField()
    status = fields.CharEnumField(TermsStatus, max_length=16, description="hub.domain.TermsStatus")
    proposed_by_id = fields.BigIntField()  # the brand that proposed this version (it accepts it so)
    accepted_by_points = fields.BooleanField(default=False)
    accepted_by_offer = fields.BooleanField(default=False)
    # Participating stores of the offer brand; empty: all of them.
    store_ids: list = fields.JSONField(default=list)
    valid_from = fields.DatetimeField(null=True)
    valid_until = fields.DatetimeField(null=True)
    # Per member, reckoned in the offer brand's time zone; null: no limit.
    limit_per_day = fields.IntField(null=True)
    limit_per_month = fields.IntField(null=True)
    # Over the partnership's life; null: no budget of that kind.
    budget_count = fields.BigIntField(null=True)
    budget_fen = fields.BigIntField(null=True)
    period = fields.CharEnumField(SettlementPeriod, max_length=8, description="hub.domain.SettlementPeriod")
    created_at = fields.DatetimeField(auto_now_add=True)
    accepted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "partnership_terms"
        unique_together = (("partnership", "version"),)


class PartnerOffer(Model):
    """What the offer brand sells for the points brand's points, in one version of the terms.

    ``code`` names the offer across versions: a store redeeming an offer gets the same code's terms in
    the version in force."""

    id = fields.BigIntField(primary_key=True)
    terms: fields.ForeignKeyRelation[PartnershipTerms] = fields.ForeignKeyField(
        "models.PartnershipTerms", related_name="offers", on_delete=fields.RESTRICT
    )
    terms_id: int
    code = fields.CharField(max_length=32)
    name = fields.CharField(max_length=100)
    kind = fields.CharEnumField(PartnerOfferKind, max_length=16, description="hub.domain.PartnerOfferKind")
    points_price = fields.BigIntField()  # in the points brand's points
    settlement_fen = fields.BigIntField()  # what the points brand pays the offer brand per redemption
    coupon_template_id = fields.BigIntField(null=True)  # COUPON: the offer brand's template
    pass_product_id = fields.BigIntField(null=True)  # PASS: the offer brand's pass product

    class Meta:
        table = "partner_offer"
        unique_together = (("terms", "code"),)


class RedemptionCode(Model):
    """A member's one-time consent: valid about two minutes, used once (a ledger guard decides)."""

    id = fields.BigIntField(primary_key=True)
    code = fields.CharField(max_length=16, unique=True)
    membership: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Membership", related_name="redemption_codes", on_delete=fields.RESTRICT
    )
    membership_id: int
    expires_at = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "redemption_code"


class PartnershipStatement(Model):
    """What the points brand owes the offer brand for one period, frozen once closed."""

    id = fields.BigIntField(primary_key=True)
    partnership: fields.ForeignKeyRelation[Partnership] = fields.ForeignKeyField(
        "models.Partnership", related_name="statements", on_delete=fields.RESTRICT
    )
    partnership_id: int
    period = fields.CharEnumField(SettlementPeriod, max_length=8, description="hub.domain.SettlementPeriod")
    period_start = fields.DatetimeField()
    period_end = fields.DatetimeField()
    status = fields.CharEnumField(StatementStatus, max_length=8, description="hub.domain.StatementStatus")
    # Frozen at close (open statements sum their lines when read).
    lines_count = fields.BigIntField(default=0)
    points_total = fields.BigIntField(default=0)
    fen_total = fields.BigIntField(default=0)
    closed_at = fields.DatetimeField(null=True)
    settled_at = fields.DatetimeField(null=True)
    payment_reference = fields.CharField(max_length=100, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "partnership_statement"
        unique_together = (("partnership", "period_start"),)


class PartnerLine(Model):
    """One redemption (positive) or void (negative) on a statement, mirroring its ledger transaction.

    Written right after the transaction commits (and again, idempotently, by a retry of the request),
    and the audit proves lines and ledger agree. A line belongs to the statement open when it is written:
    a void after its redemption's statement closed is an adjustment on a later one."""

    id = fields.BigIntField(primary_key=True)
    transaction_id = fields.BigIntField(unique=True)  # the ledger transaction it mirrors
    partnership: fields.ForeignKeyRelation[Partnership] = fields.ForeignKeyField(
        "models.Partnership", related_name="lines", on_delete=fields.RESTRICT
    )
    partnership_id: int
    statement: fields.ForeignKeyRelation[PartnershipStatement] = fields.ForeignKeyField(
        "models.PartnershipStatement", related_name="lines", on_delete=fields.RESTRICT
    )
    statement_id: int
    version = fields.IntField()
    offer: fields.ForeignKeyRelation[PartnerOffer] = fields.ForeignKeyField(
        "models.PartnerOffer", related_name="lines", on_delete=fields.RESTRICT
    )
    offer_id: int
    store_id = fields.BigIntField()  # the offer brand's store that redeemed
    membership_id = fields.BigIntField()  # the points brand's membership (never shown to the offer brand)
    member_pseudonym = fields.CharField(max_length=32)
    points = fields.BigIntField()  # signed: a void is negative
    fen = fields.BigIntField()  # signed
    voids_id = fields.BigIntField(null=True)  # a void: the line it voids
    occurred_at = fields.DatetimeField()

    class Meta:
        table = "partner_line"
        indexes = (("partnership_id", "occurred_at"), ("statement_id",))

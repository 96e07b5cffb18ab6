"""Partnerships in the schema: lifecycle and terms, redemptions with the member's code, settlement."""

from hub.schema.partnerships.clearing import ClearingMutation, ClearingQuery
from hub.schema.partnerships.lifecycle import (
    PartnerOffer,
    Partnership,
    PartnershipMutation,
    PartnershipQuery,
)
from hub.schema.partnerships.redemptions import PartnerRedemption, RedemptionMutation
from hub.schema.partnerships.statements import (
    PartnershipStatement,
    PartnershipSubscription,
    StatementMutation,
    StatementQuery,
)

__all__ = [
    "ClearingMutation",
    "ClearingQuery",
    "PartnerOffer",
    "PartnerRedemption",
    "Partnership",
    "PartnershipMutation",
    "PartnershipQuery",
    "PartnershipStatement",
    "PartnershipSubscription",
    "RedemptionMutation",
    "StatementMutation",
    "StatementQuery",
]

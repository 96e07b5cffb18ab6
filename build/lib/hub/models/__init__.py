"""Tortoise models, one module per domain. No GraphQL here."""

from hub.models.audit import AuditAccountState, AuditCheckpoint, AuditMode
from hub.models.auth import ApiKey, LoginCode, LoginThrottle, Role
from hub.models.brands import Brand, Store
from hub.models.catalog import GiftItem, GiftOrder, GiftOrderStatus
from hub.models.checkout import ClawbackPolicy, SpendingRules
from hub.models.clearing import ClearingEntry, ClearingPolicy
from hub.models.coupons import CouponKind, CouponTemplate
from hub.models.earning import EarnRule, EarnRuleVersion, Purchase, PurchaseRefund
from hub.models.engagement import CheckIn, CheckInProgram, EngagementEvent, EngagementEventReward, LimitPeriod
from hub.models.grants import GrantPlan, GrantRecipient
from hub.models.installation import Installation
from hub.models.jobs import FINISHED_STATUSES, Job, JobItemFailure, JobStatus
from hub.models.ledger import (
    Account,
    AccountKind,
    Asset,
    LedgerCounter,
    LedgerTransaction,
    Lot,
    LotAllocation,
    OutboxEvent,
    Posting,
    TransactionKind,
)
from hub.models.lifecycle import ExpiryKind, ExpiryNotice, ExpiryPeriod, ExpiryPolicy, LifecycleSettings
from hub.models.members import Member, Membership
from hub.models.partnerships import (
    PartnerLine,
    PartnerOffer,
    Partnership,
    PartnershipStatement,
    PartnershipTerms,
    RedemptionCode,
)
from hub.models.passes import PassProduct
from hub.models.records import ChangeRecord, CreationClaim
from hub.models.referrals import Referral, ReferralCode
from hub.models.reports import ReportDay, ReportDelta
from hub.models.tiers import BASE_TIER, Tier, TierChange, TierLadder

__all__ = [
    "BASE_TIER",
    "FINISHED_STATUSES",
    "Account",
    "AccountKind",
    "ApiKey",
    "Asset",
    "AuditAccountState",
    "AuditCheckpoint",
    "AuditMode",
    "Brand",
    "ChangeRecord",
    "CheckIn",
    "CheckInProgram",
    "ClawbackPolicy",
    "ClearingEntry",
    "ClearingPolicy",
    "CouponKind",
    "CouponTemplate",
    "CreationClaim",
    "EarnRule",
    "EarnRuleVersion",
    "EngagementEvent",
    "EngagementEventReward",
    "ExpiryKind",
    "ExpiryNotice",
    "ExpiryPeriod",
    "ExpiryPolicy",
    "GiftItem",
    "GiftOrder",
    "GiftOrderStatus",
    "GrantPlan",
    "GrantRecipient",
    "Installation",
    "Job",
    "JobItemFailure",
    "JobStatus",
    "LedgerCounter",
    "LedgerTransaction",
    "LifecycleSettings",
    "LimitPeriod",
    "LoginCode",
    "LoginThrottle",
    "Lot",
    "LotAllocation",
    "Member",
    "Membership",
    "OutboxEvent",
    "PartnerLine",
    "PartnerOffer",
    "Partnership",
    "PartnershipStatement",
    "PartnershipTerms",
    "PassProduct",
    "Posting",
    "Purchase",
    "PurchaseRefund",
    "RedemptionCode",
    "Referral",
    "ReferralCode",
    "ReportDay",
    "ReportDelta",
    "Role",
    "SpendingRules",
    "Store",
    "Tier",
    "TierChange",
    "TierLadder",
    "TransactionKind",
]

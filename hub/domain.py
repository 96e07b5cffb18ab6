"""Domain vocabulary shared by every layer: plain enums, no ORM and no GraphQL.

The models store these values and the schema exposes them; neither needs the other to name them.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Who a caller is: the platform operator, a brand's HQ, one store, or a member."""

    PLATFORM = "platform"
    BRAND = "brand"
    STORE = "store"
    MEMBER = "member"


class Asset(StrEnum):
    """What a balance counts. Amounts are integers in the asset's unit."""

    POINTS = "points"  # a brand's points
    STORED_VALUE = "stored_value"  # prepaid money in fen; asset code `principal` or `bonus`
    SERVICE_PASS = "service_pass"  # uses left of one pass product (asset code = the product)
    SETTLEMENT = "settlement"  # money in fen one party owes another (partnerships, franchise stores)
    COUPON = "coupon"  # coupons of one template (asset code = the template's code): one lot per coupon


class AccountKind(StrEnum):
    MEMBER = "member"  # what a membership holds and may spend
    PENDING = "pending"  # a membership's points earned but not yet available (maturing)
    ISSUANCE = "issuance"  # the brand's source of value; goes negative as it issues
    BURN = "burn"  # the brand's sink for redeemed and expired value
    PAYABLE = "payable"  # what a brand or store owes its counterparty (owner: partnership or store)
    RECEIVABLE = "receivable"  # what a brand or store is owed (owner: partnership or store)
    CLEARING = "clearing"  # the brand's own side of settlement postings (balances payables/receivables)


class TransactionKind(StrEnum):
    EARN = "earn"
    REDEEM = "redeem"
    ADJUST = "adjust"
    REVERSE = "reverse"
    TRANSFER = "transfer"
    EXPIRE = "expire"
    MATURE = "mature"
    TOP_UP = "top_up"
    PARTNER_REDEEM = "partner_redeem"
    SETTLE = "settle"
    CHECK_IN = "check_in"  # a daily check-in's reward (engagement)
    EVENT_REWARD = "event_reward"  # an HQ-defined engagement event reported for a member
    GRANT = "grant"  # one member's points of a bulk grant (a background job)
    COUPON_ISSUE = "coupon_issue"  # coupons issued to a member (by HQ, or bought with points)


class LimitPeriod(StrEnum):
    """The window a per-member limit counts in, reckoned in the brand's time zone."""

    TOTAL = "total"  # ever
    DAY = "day"
    WEEK = "week"  # ISO weeks, Monday to Sunday
    MONTH = "month"
    YEAR = "year"


class CouponKind(StrEnum):
    """What a coupon takes off a bill (the template says how much)."""

    AMOUNT_OFF = "amount_off"  # a fixed amount, on a bill of at least the minimum
    PERCENT_OFF = "percent_off"  # a share of the bill, rounded down, up to a cap
    FREE_ITEM = "free_item"  # one line of the bill with the template's SKU, free (up to a cap)

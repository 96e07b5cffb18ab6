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


class KeyScope(StrEnum):
    """A permission an API key carries beyond its role (docs/security.md, personal data)."""

    PERSONAL_DATA = "personal_data"  # members' phone numbers in full, members' data export


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
    REDATE = "redate"  # open lots given new expiry dates by HQ (lifecycle)
    MATURE = "mature"
    TOP_UP = "top_up"
    PARTNER_REDEEM = "partner_redeem"
    SETTLE = "settle"
    CLEARING = "clearing"  # franchise clearing of points one store issued and another accepted
    CHECK_IN = "check_in"  # a daily check-in's reward (engagement)
    EVENT_REWARD = "event_reward"  # an HQ-defined engagement event reported for a member
    GRANT = "grant"  # one member's points of a bulk grant (a background job)
    COUPON_ISSUE = "coupon_issue"  # coupons issued to a member (by HQ, or bought with points)
    REFERRAL = "referral"  # a referral reward (referrer or referee), once per referral and side
    CHECKOUT = "checkout"  # a bill paid with points, stored value and/or a coupon; earns on its cash
    CHECKOUT_REFUND = "checkout_refund"  # (part of) a checkout or purchase refunded; references it
    TOP_UP_REFUND = "top_up_refund"  # unspent principal of a stored-value top-up paid back
    CONVERT = "convert"  # points turned into stored value at the brand's point value
    GIFT_ORDER = "gift_order"  # a gift catalog order: its points paid, its stock and limit counted
    GIFT_ORDER_CANCEL = "gift_order_cancel"  # a cancelled gift order's points returned (once per order)
    PASS_SALE = "pass_sale"  # a service pass sold: its uses credited as one lot, its price paid
    PASS_VISIT = "pass_visit"  # one use of a service pass consumed at a store visit


class LimitPeriod(StrEnum):
    """The window a per-member limit counts in, reckoned in the brand's time zone."""

    TOTAL = "total"  # ever
    DAY = "day"
    WEEK = "week"  # ISO weeks, Monday to Sunday
    MONTH = "month"
    YEAR = "year"


class GiftOrderStatus(StrEnum):
    """Where a gift order is: placed (points paid), then collected, or cancelled (points returned)."""

    PLACED = "placed"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class PassPayment(StrEnum):
    """How a service pass was paid for."""

    CASH = "cash"  # money paid at the store outside the hub, recorded with its payment reference
    STORED_VALUE = "stored_value"  # the member's stored value, at the product's money price
    POINTS = "points"  # the member's points, at the product's points price


class CouponKind(StrEnum):
    """What a coupon takes off a bill (the template says how much)."""

    AMOUNT_OFF = "amount_off"  # a fixed amount, on a bill of at least the minimum
    PERCENT_OFF = "percent_off"  # a share of the bill, rounded down, up to a cap
    FREE_ITEM = "free_item"  # one line of the bill with the template's SKU, free (up to a cap)


class ClawbackPolicy(StrEnum):
    """What a refund does with points the refunded purchase earned that the member already spent."""

    WITHIN_BALANCE = "within_balance"  # take back what the member still has; forgive the rest
    DEDUCT_FROM_CASH = "deduct_from_cash"  # and deduct the rest's value from the cash paid back


# --- earning (rules, tiers, referrals): docs/earning.md ---------------------------------------------


class EarnRuleKind(StrEnum):
    """What an earning rule does; docs/earning.md says how the kinds stack."""

    BASE_RATE = "base_rate"  # points per fen for every line (brand-wide, or for some stores)
    CATEGORY_RATE = "category_rate"  # replaces the base rate for matching lines (category, margin, SKU)
    MULTIPLIER = "multiplier"  # multiplies matching lines; highest per group, groups multiply
    MINIMUM_BILL = "minimum_bill"  # a bill below the minimum earns no rate points
    PURCHASE_CAP = "purchase_cap"  # at most so many rate points per purchase
    DAILY_CAP = "daily_cap"  # at most so many rate points per member per brand-local day
    FIRST_PURCHASE_BONUS = "first_purchase_bonus"  # added on the membership's first purchase
    BIRTHDAY_BONUS = "birthday_bonus"  # added once a year on the birthday (day or month)
    REFERRAL = "referral"  # rewards referrer and referee on the referee's first qualifying purchase


class BirthdayWindow(StrEnum):
    DAY = "day"
    MONTH = "month"


class TierBasis(StrEnum):
    """What qualifies a member for a tier."""

    POINTS = "points"  # points earned by purchases (not the balance), net of refunds
    SPEND = "spend"  # fen paid in purchases, net of refunds


class TierWindow(StrEnum):
    ROLLING_DAYS = "rolling_days"  # the last N days; reviewed at each brand-local month end
    CALENDAR_YEAR = "calendar_year"  # the brand-local calendar year; reviewed at its end


class TierDowngrade(StrEnum):
    """What the review at a period's end does to a member who no longer qualifies."""

    NONE = "none"  # tiers only go up
    ONE_STEP = "one_step"  # down one step
    RECOMPUTE = "recompute"  # down to the tier the period qualifies for


class TierDirection(StrEnum):
    UP = "up"
    DOWN = "down"


class ReferralStatus(StrEnum):
    PENDING = "pending"  # signed up, no qualifying purchase yet
    REWARDED = "rewarded"  # the qualifying purchase happened and the rewards were posted


# --- lifecycle (expiry, notices, transfers): docs/lifecycle.md --------------------------------------


class ExpiryKind(StrEnum):
    """How a brand's expiry policy dates the points earned while it is in force."""

    NEVER = "never"
    DAYS = "days"  # through the end of the brand-local day N days after earning
    MONTHS = "months"  # through the end of the brand-local day N calendar months after earning
    PERIOD_END = "period_end"  # at the end of the month / quarter / year N periods after earning's
    CLEARING_DATE = "clearing_date"  # all at one date HQ sets (a one-off program-wide clearing)


class ExpiryPeriod(StrEnum):
    """The calendar period of a PERIOD_END policy, in the brand's time zone."""

    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


# --- reports: docs/reports.md -----------------------------------------------------------------------


class ReportPeriod(StrEnum):
    """How a report cuts its date range, in the brand's time zone."""

    DAY = "day"
    WEEK = "week"  # ISO weeks, Monday to Sunday
    MONTH = "month"


class MemberListOrder(StrEnum):
    """The HQ member list's order; ties go to the newer membership."""

    NEWEST = "newest"  # latest enrolment first
    POINTS = "points"  # most available points first
    SPEND = "spend"  # highest lifetime spend first
    LAST_PURCHASE = "last_purchase"  # latest purchase first, members who never bought last


# --- partnerships: docs/partnerships.md -------------------------------------------------------------


class PartnershipStatus(StrEnum):
    PROPOSED = "proposed"  # waiting for the other HQ
    DECLINED = "declined"  # the other HQ said no (final)
    ACTIVE = "active"  # terms in force: redemptions are accepted
    SUSPENDED = "suspended"  # paused by either HQ: nothing new is redeemed until resumed
    ENDED = "ended"  # final: nothing new is redeemed; what was bought stays valid


class TermsStatus(StrEnum):
    PROPOSED = "proposed"  # accepted by one side so far
    IN_FORCE = "in_force"  # accepted by both: the version redemptions use
    SUPERSEDED = "superseded"  # a later version came into force
    DECLINED = "declined"  # the other side said no


class SettlementPeriod(StrEnum):
    DAY = "day"
    MONTH = "month"


class StatementStatus(StrEnum):
    OPEN = "open"  # lines are still added
    CLOSED = "closed"  # frozen: later voids go to a later statement
    SETTLED = "settled"  # paid, with the payment's reference


class PartnerOfferKind(StrEnum):
    """What an offer gives at the offer brand's store."""

    SERVICE = "service"  # a service done now (a wash): settlement only
    COUPON = "coupon"  # a coupon of the offer brand, issued to the member's membership there
    PASS = "pass"  # a service pass of the offer brand (its uses), issued to the member's membership there


class ClearingFunding(StrEnum):
    """Who funds the points one store of a brand issued and another accepted (franchise clearing)."""

    ISSUING_STORE = "issuing_store"  # the store that issued them pays the store that accepted them
    HQ = "hq"  # the brand's HQ pays the accepting store
    SPLIT = "split"  # the issuing store pays its share, HQ the rest

"""Who may do what: the one declared authorisation policy of the hub.

Every operation is an ``Action``: the roles that may call it and the scope rule that says which brand,
store, membership (later: partnership) it may reach. The table below is the single source:

- each root field declares its action (``hub/schema/authorize.py`` refuses a caller of another role
  before the resolver runs, and ends subscriptions when the credential does);
- each resolver names the same action when it looks a thing up (``hub/resolvers/access.py``), and the
  lookup is a query filtered by the caller's reach, so a thing out of reach is not found, exactly like
  a thing that does not exist (one answer for both: NOT_FOUND, or null from ``node(id:)``);
- the authorisation matrix test (``tests/authorization/``) iterates over this table, so an action
  without a scenario fails it, and docs/security.md carries the table (a test keeps them equal).

Adding an operation: one ``_declare`` line here, then ``policy.require`` or an ``access.get_*`` call with
it in the resolver and ``Authorize(policy.X)`` on the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from hub.auth.principal import Principal
from hub.domain import Role
from hub.errors import DomainError, ErrorCode, PermissionDenied


class Scope(StrEnum):
    """Which things an allowed role reaches."""

    NONE = "none"
    CALLER = "caller"
    BRAND = "brand"
    MEMBERSHIP = "membership"
    PARTNERSHIP = "partnership"


SCOPE_RULES: dict[Scope, str] = {
    Scope.NONE: "no brand data: the role alone decides",
    Scope.CALLER: "the caller's own brand (a store: its store's brand); nothing else can be named",
    Scope.BRAND: (
        "platform: every brand; HQ: its brand; store: its store's brand; member: the brands it belongs"
        " to (a brand-issued token: that brand only)"
    ),
    Scope.MEMBERSHIP: (
        "platform: every membership; HQ: its brand's; store: its store's brand's; member: its own"
        " (a brand-issued token: that brand's only)"
    ),
    Scope.PARTNERSHIP: (
        "platform: every partnership; HQ and store: the partnerships their brand is one side of;"
        " anyone else: none (NOT_FOUND, as for a missing one)"
    ),
}


@dataclass(frozen=True)
class Action:
    name: str
    roles: frozenset[Role]
    scope: Scope
    summary: str
    public: bool = False  # callable without a credential


POLICY: dict[str, Action] = {}


def _declare(name: str, roles: set[Role], scope: Scope, summary: str, public: bool = False) -> Action:
    if name in POLICY:
        raise ValueError(f"action {name} declared twice")
    POLICY[name] = action = Action(name, frozenset(roles), scope, summary, public)
    return action


PLATFORM, BRAND, STORE, MEMBER = Role.PLATFORM, Role.BRAND, Role.STORE, Role.MEMBER
ANY = {PLATFORM, BRAND, STORE, MEMBER}

# One line per action: name, roles, scope, what it does (as docs/security.md says it).
CREATE_BRAND = _declare("brand.create", {PLATFORM}, Scope.NONE, "create a brand")
LIST_BRANDS = _declare("brand.list", ANY, Scope.BRAND, "list brands")
READ_BRAND = _declare("brand.read", ANY, Scope.BRAND, "read a brand")
SET_EARN_RATE = _declare("brand.setEarnRate", {BRAND}, Scope.BRAND, "set a brand's earn rate")
UPDATE_BRAND_SETTINGS = _declare(
    "brand.updateSettings", {BRAND}, Scope.BRAND, "set a brand's time zone, point value and return window"
)
CREATE_STORE = _declare("store.create", {BRAND}, Scope.BRAND, "open a store")
READ_STORE = _declare("store.read", ANY, Scope.BRAND, "read a store, list a brand's stores")
ENROLL_MEMBER = _declare("member.enroll", {STORE}, Scope.CALLER, "enrol a phone in the store's brand")
FIND_MEMBER = _declare("member.findByPhone", {BRAND, STORE}, Scope.CALLER, "find a member by phone")
LIST_MEMBERSHIPS = _declare("membership.list", ANY, Scope.MEMBERSHIP, "list memberships")
READ_MEMBERSHIP = _declare("membership.read", ANY, Scope.MEMBERSHIP, "read a membership and its history")
WATCH_BALANCE = _declare("membership.watch", ANY, Scope.MEMBERSHIP, "watch a membership's balance live")
WATCH_BRAND_ACTIVITY = _declare(
    "brand.watchActivity", {PLATFORM, BRAND}, Scope.BRAND, "watch every balance change of a brand live"
)
READ_TRANSACTION = _declare("transaction.read", ANY, Scope.MEMBERSHIP, "read a ledger transaction")
EARN_POINTS = _declare("points.earn", {STORE}, Scope.MEMBERSHIP, "record a purchase that earns points")
REDEEM_POINTS = _declare("points.redeem", {STORE}, Scope.MEMBERSHIP, "redeem points")
ADJUST_POINTS = _declare("points.adjust", {BRAND}, Scope.MEMBERSHIP, "adjust points")
AUDIT_LEDGER = _declare("ledger.audit", {PLATFORM, BRAND}, Scope.BRAND, "audit the ledger")
CREATE_KEY = _declare("key.create", {PLATFORM, BRAND}, Scope.BRAND, "create an API key")
LIST_KEYS = _declare("key.list", {PLATFORM, BRAND}, Scope.BRAND, "list API keys")
READ_KEY = _declare("key.read", {PLATFORM, BRAND}, Scope.BRAND, "read an API key")
REVOKE_KEY = _declare("key.revoke", {PLATFORM, BRAND}, Scope.BRAND, "revoke an API key")
ROTATE_KEY = _declare("key.rotate", {PLATFORM, BRAND}, Scope.BRAND, "rotate an API key's secret")
# Earning (docs/earning.md): rules, tiers, referral, birthday.
MANAGE_EARN_RULES = _declare(
    "earnRule.manage", {BRAND}, Scope.BRAND, "create, change and retire a brand's earning rules"
)
READ_EARN_RULES = _declare(
    "earnRule.read", {PLATFORM, BRAND, STORE}, Scope.BRAND, "read a brand's earning rules"
)
PREVIEW_EARN = _declare(
    "earn.preview", {BRAND, STORE}, Scope.MEMBERSHIP, "preview what a purchase would earn"
)
SET_TIER_LADDER = _declare("tier.setLadder", {BRAND}, Scope.BRAND, "set a brand's tier ladder")
WATCH_TIER = _declare("tier.watch", ANY, Scope.MEMBERSHIP, "watch a membership's tier changes live")
ISSUE_REFERRAL_CODE = _declare(
    "referral.issueCode", {BRAND, STORE, MEMBER}, Scope.MEMBERSHIP, "get a membership's referral code"
)
SET_BIRTHDAY = _declare(
    "member.setBirthday", {BRAND, STORE, MEMBER}, Scope.MEMBERSHIP, "record a member's birthday (once)"
)
ISSUE_TOKEN = _declare("token.issue", {BRAND, STORE}, Scope.MEMBERSHIP, "issue a one-brand member token")
READ_JOB = _declare("job.read", {PLATFORM, BRAND}, Scope.BRAND, "read a background job")
LIST_JOBS = _declare("job.list", {PLATFORM, BRAND}, Scope.BRAND, "list background jobs")
CANCEL_JOB = _declare("job.cancel", {PLATFORM, BRAND}, Scope.BRAND, "cancel a background job")
WATCH_JOB = _declare("job.watch", {PLATFORM, BRAND}, Scope.BRAND, "watch a background job's progress live")
# Engagement (docs/engagement.md): check-in, events, bulk grants. Reading a brand's check-in rewards and
# events is brand.read; a membership's check-ins, membership.read; a bulk grant, job.read.
CHECK_IN = _declare("checkin.perform", {STORE, MEMBER}, Scope.MEMBERSHIP, "check a member in for today")
SET_CHECK_IN_PROGRAM = _declare(
    "checkin.configure", {BRAND}, Scope.BRAND, "set the brand's daily check-in rewards"
)
DEFINE_EVENT = _declare("event.define", {BRAND}, Scope.BRAND, "create or change an engagement event")
REPORT_EVENT = _declare(
    "event.report", {BRAND, STORE}, Scope.MEMBERSHIP, "report an engagement event for a member"
)
START_BULK_GRANT = _declare("grant.start", {BRAND}, Scope.BRAND, "grant or deduct points for a segment")
COUNT_SEGMENT = _declare("segment.count", {PLATFORM, BRAND}, Scope.BRAND, "count a segment's members")
# Spending (docs/spending.md): coupons.
MANAGE_COUPONS = _declare(
    "coupon.manageTemplates", {BRAND}, Scope.BRAND, "define and change coupon templates"
)
READ_COUPON_TEMPLATES = _declare("coupon.readTemplates", ANY, Scope.BRAND, "list coupon templates")
ISSUE_COUPONS = _declare("coupon.issue", {BRAND}, Scope.MEMBERSHIP, "give a member coupons")
BUY_COUPON = _declare("coupon.buy", {STORE, MEMBER}, Scope.MEMBERSHIP, "buy a coupon with points")
READ_COUPONS = _declare("coupon.read", ANY, Scope.MEMBERSHIP, "read a membership's coupons")
# Lifecycle (docs/lifecycle.md): expiry.
SET_EXPIRY_POLICY = _declare(
    "expiry.setPolicy", {BRAND}, Scope.BRAND, "set a brand's expiry policy (points earned from then on)"
)
REDATE_POINTS = _declare(
    "expiry.redate", {BRAND}, Scope.BRAND, "date the points members hold by the policy in force (a job)"
)
READ_EXPIRY_POLICY = _declare("expiry.readPolicy", ANY, Scope.BRAND, "read a brand's expiry policy")
LIST_EXPIRING = _declare(
    "expiry.listExpiring", {PLATFORM, BRAND}, Scope.BRAND, "list memberships with points expiring soon"
)
WATCH_EXPIRING = _declare(
    "expiry.watch", ANY, Scope.MEMBERSHIP, "receive a membership's expiring-points notices live"
)
READ_LIFECYCLE_SETTINGS = _declare(
    "lifecycle.readSettings", ANY, Scope.BRAND, "read a brand's transfer limits and notice lead times"
)
UPDATE_LIFECYCLE_SETTINGS = _declare(
    "lifecycle.updateSettings", {BRAND}, Scope.BRAND, "set a brand's transfer limits and notice lead times"
)
TRANSFER_POINTS = _declare(
    "points.transfer", {MEMBER}, Scope.MEMBERSHIP, "give points to another member of the brand"
)
MERGE_POINTS = _declare(
    "points.merge",
    {BRAND},
    Scope.MEMBERSHIP,
    "move a membership's points to another one (a phone changed owner)",
)
LIST_LAPSED = _declare("lapsed.list", {PLATFORM, BRAND}, Scope.BRAND, "list a brand's lapsed members")
START_WIN_BACK = _declare(
    "lapsed.winBack", {BRAND}, Scope.BRAND, "grant points to the lapsed members (a bulk grant)"
)
READ_WIN_BACK_RESPONSE = _declare(
    "lapsed.response", {PLATFORM, BRAND}, Scope.BRAND, "read how many of a grant's members bought since"
)
# Reports (docs/reports.md): figures, the HQ member list and their CSV exports.
READ_REPORTS = _declare(
    "report.read", {PLATFORM, BRAND}, Scope.BRAND, "read a brand's reports and member list, export them"
)
# Records (docs/records.md): the change log, personal data, reversals.
READ_CHANGE_LOG = _declare(
    "changeLog.read", {PLATFORM, BRAND}, Scope.BRAND, "read the log of configuration changes and adjustments"
)
EXPORT_MEMBER_DATA = _declare(
    "member.export",
    {PLATFORM, BRAND, MEMBER},
    Scope.MEMBERSHIP,
    "export a member's data (keys: with personal data)",
)
ERASE_MEMBER_DATA = _declare(
    "member.erase",
    {PLATFORM, BRAND, MEMBER},
    Scope.MEMBERSHIP,
    "erase a member's personal data, keeping the ledger (keys: with personal data)",
)
REVERSE_TRANSACTION = _declare(
    "transaction.reverse", {BRAND}, Scope.MEMBERSHIP, "reverse a manual adjustment or a redemption, once"
)
# Spending (docs/spending.md): checkout rules, stored value, checkout and refunds.
SET_SPENDING_RULES = _declare(
    "spending.setRules", {BRAND}, Scope.BRAND, "set checkout rules, top-up bonus tiers, refund clawback"
)
TOP_UP = _declare("storedValue.topUp", {STORE}, Scope.MEMBERSHIP, "record a stored-value top-up")
REFUND_TOP_UP = _declare(
    "storedValue.refundTopUp", {BRAND, STORE}, Scope.MEMBERSHIP, "pay back a top-up's unspent principal"
)
CONVERT_POINTS = _declare(
    "storedValue.convertPoints", {STORE, MEMBER}, Scope.MEMBERSHIP, "turn points into stored value"
)
QUOTE_CHECKOUT = _declare(
    "checkout.quote", {BRAND, STORE}, Scope.MEMBERSHIP, "quote what points may pay on a bill"
)
CHECKOUT = _declare(
    "checkout.pay", {STORE}, Scope.MEMBERSHIP, "settle a bill with points, stored value and a coupon"
)
REFUND_CHECKOUT = _declare(
    "checkout.refund", {BRAND, STORE}, Scope.MEMBERSHIP, "refund (part of) a checkout or purchase"
)
READ_WALLET = _declare("storedValue.read", ANY, Scope.MEMBERSHIP, "read a membership's stored value")
# Spending (docs/spending.md): gift catalog and orders.
MANAGE_GIFTS = _declare("gift.manage", {BRAND}, Scope.BRAND, "add and change gift catalog items")
READ_GIFTS = _declare("gift.read", ANY, Scope.BRAND, "list gift catalog items")
ORDER_GIFT = _declare("gift.order", {STORE, MEMBER}, Scope.MEMBERSHIP, "order a gift with points")
LIST_GIFT_ORDERS = _declare(
    "giftOrder.list",
    {PLATFORM, BRAND, STORE},
    Scope.BRAND,
    "list gift orders (a store: those collected at it)",
)
READ_GIFT_ORDER = _declare("giftOrder.read", ANY, Scope.MEMBERSHIP, "read a membership's gift orders")
FULFIL_GIFT_ORDER = _declare(
    "giftOrder.fulfil", {STORE}, Scope.MEMBERSHIP, "hand over a gift order collected at the store"
)
CANCEL_GIFT_ORDER = _declare(
    "giftOrder.cancel", {BRAND, STORE, MEMBER}, Scope.MEMBERSHIP, "cancel a gift order, returning its points"
)
# Spending (docs/spending.md): service passes.
MANAGE_PASSES = _declare("pass.manageProducts", {BRAND}, Scope.BRAND, "define and change pass products")
READ_PASS_PRODUCTS = _declare("pass.readProducts", ANY, Scope.BRAND, "list pass products")
BUY_PASS = _declare(
    "pass.buy", {STORE, MEMBER}, Scope.MEMBERSHIP, "sell or buy a service pass (cash, stored value, points)"
)
USE_PASS = _declare("pass.use", {STORE}, Scope.MEMBERSHIP, "use one visit of a member's service pass")
READ_PASSES = _declare("pass.read", ANY, Scope.MEMBERSHIP, "read a membership's service passes")
# Partnerships (docs/partnerships.md): only the two brands of a partnership reach it.
PROPOSE_PARTNERSHIP = _declare(
    "partnership.propose", {BRAND}, Scope.CALLER, "propose a partnership to another brand"
)
RESPOND_PARTNERSHIP = _declare(
    "partnership.respond", {BRAND}, Scope.PARTNERSHIP, "accept or decline a partnership's proposed terms"
)
PROPOSE_TERMS = _declare(
    "partnership.proposeTerms", {BRAND}, Scope.PARTNERSHIP, "propose a new version of a partnership's terms"
)
SET_PARTNERSHIP_STATUS = _declare(
    "partnership.setStatus", {BRAND}, Scope.PARTNERSHIP, "suspend, resume or end a partnership"
)
READ_PARTNERSHIP = _declare(
    "partnership.read", {PLATFORM, BRAND, STORE}, Scope.PARTNERSHIP, "read a partnership and its terms"
)
CREATE_REDEMPTION_CODE = _declare(
    "partnership.createCode", {MEMBER}, Scope.MEMBERSHIP, "get a one-time code to redeem points at a partner"
)
REDEEM_PARTNER_OFFER = _declare(
    "partnership.redeem", {STORE}, Scope.PARTNERSHIP, "redeem a partner offer with a member's code"
)
VOID_PARTNER_REDEMPTION = _declare(
    "partnership.void", {STORE}, Scope.PARTNERSHIP, "void a partner redemption the store made"
)
READ_STATEMENTS = _declare(
    "partnership.readStatements", {PLATFORM, BRAND}, Scope.PARTNERSHIP, "read settlement statements"
)
CLOSE_STATEMENT = _declare(
    "partnership.closeStatement", {BRAND}, Scope.PARTNERSHIP, "close a settlement statement"
)
SETTLE_STATEMENT = _declare(
    "partnership.settleStatement", {BRAND}, Scope.PARTNERSHIP, "record a statement's payment"
)
WATCH_PARTNERSHIP = _declare(
    "partnership.watch", {BRAND}, Scope.PARTNERSHIP, "watch a partnership's redemptions and voids live"
)
# Franchise clearing (docs/partnerships.md): points issued at one store and accepted at another.
CONFIGURE_CLEARING = _declare(
    "clearing.configure", {BRAND}, Scope.BRAND, "choose who funds points across stores, clear now"
)
READ_CLEARING = _declare(
    "clearing.read", {PLATFORM, BRAND, STORE}, Scope.BRAND, "read per-store clearing statements"
)
REQUEST_CODE = _declare("login.requestCode", ANY, Scope.NONE, "ask for a login code", public=True)
VERIFY_CODE = _declare(
    "login.verifyCode", ANY, Scope.NONE, "trade a code for an all-brands token", public=True
)
VIEWER = _declare("viewer", ANY, Scope.NONE, "see who the credential is", public=True)
NODE = _declare("node", ANY, Scope.NONE, "fetch by global id (the object's read action decides)")


def check(principal: Principal | None, action: Action) -> Principal | None:
    """The caller if ``action`` allows its role (None for an anonymous caller of a public action)."""
    if principal is None:
        if action.public:
            return None
        raise DomainError(ErrorCode.UNAUTHENTICATED, "A valid bearer token is required.")
    if principal.expires_at is not None and principal.expires_at <= datetime.now(UTC):
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The credential expired.")
    if principal.role not in action.roles:
        allowed = ", ".join(sorted(r.value for r in action.roles))
        raise PermissionDenied(f"Only {allowed} may {action.summary}.")
    return principal


def require(principal: Principal | None, action: Action) -> Principal:
    """The caller, who must be authenticated and of a role ``action`` allows."""
    p = check(principal, action)
    if p is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "A valid bearer token is required.")
    return p


def markdown_table() -> str:
    """The table as docs/security.md shows it."""
    order = [PLATFORM, BRAND, STORE, MEMBER]
    head = "| action | what | anonymous | platform | brand HQ | store | member | scope |"
    lines = [head, "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for a in POLICY.values():
        marks = ["yes" if a.public else "–"] + ["yes" if r in a.roles else "–" for r in order]
        lines.append(f"| `{a.name}` | {a.summary} | {' | '.join(marks)} | {a.scope.value} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m hub.policy: the table for docs/security.md
    print(markdown_table())

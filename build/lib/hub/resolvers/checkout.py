"""Checkout at a store: points, stored value and a coupon on one bill, the cash remainder earning points.

``quote`` answers what the brand's rules let points pay on a bill (nothing is held). ``checkout`` writes
ONE ledger transaction (``CHECKOUT``) under one idempotency key: the coupon's lot drawn, the points
burned, the stored value drawn (principal and bonus in proportion, ``hub/resolvers/wallets.py``), and
the points the cash part earns by the brand's rules (``earning.post_earn``); all of it commits or none
of it does. After the commit, ``purchases.after_purchase`` records the purchase (the cash part) for
tiers, referrals and the member's activity, exactly as ``recordPurchase`` does. See docs/spending.md,
"Checkout".

The bill: ``bill = couponOff + pointsFen + storedValueFen + cashFen``. Points pay ``pointsFen``, a whole
number of the brand's steps, at most the rules' share of what the coupon leaves on the eligible lines;
the points it costs are ``ceil(pointsFen x pointValuePoints / pointValueFen)`` (exact at the default
100 points = ¥1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hub import policy
from hub.auth import Principal
from hub.errors import DomainError, ErrorCode, InvalidInput
from hub.events.broker import LocalBroker
from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Leg, Outcome, TransactionRecord
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import Brand, CouponTemplate, Membership, SpendingRules, TransactionKind
from hub.resolvers import access, coupons, purchases, spending_rules, wallets
from hub.resolvers import validation as v
from hub.resolvers.claims import claimed
from hub.resolvers.earning import EarnRequest, PurchaseLine, post_earn
from hub.resolvers.points import PointsView, points_of

Lines = list[tuple[int, str, str, str]] | None


def points_for(brand: Brand, fen: int) -> int:
    """Points that pay ``fen`` at the brand's point value, rounded up (in the brand's favour)."""
    return -(-fen * brand.point_value_points // brand.point_value_fen)


def value_of(brand: Brand, points: int) -> int:
    """What ``points`` pay, in fen, rounded down."""
    return points * brand.point_value_fen // brand.point_value_points


@dataclass(frozen=True, slots=True)
class PointsLimit:
    """What the rules let points pay on one bill."""

    eligible_fen: int  # what points may pay for: the bill after the coupon, without excluded lines
    max_fen: int  # the most points may pay: share, steps and the member's points applied
    max_points: int  # what that costs
    reason: str  # why it is what it is (a sentence for the till)


def points_limit(
    rules: SpendingRules,
    brand: Brand,
    bill_fen: int,
    lines: Sequence[PurchaseLine],
    coupon_off_fen: int,
    available_points: int | None,
) -> PointsLimit:
    """The rules applied to a bill: minimum bill, excluded categories, maximum share, whole steps, and
    (when given) the member's available points. Pure: the quote and the checkout share it."""
    payable = bill_fen - coupon_off_fen
    if bill_fen < rules.points_min_bill_fen:
        return PointsLimit(0, 0, 0, f"Points pay bills of at least {rules.points_min_bill_fen} fen.")
    excluded = set(rules.excluded_categories)
    eligible = payable
    if lines and excluded:
        eligible = min(payable, sum(x.amount_fen for x in lines if x.category not in excluded))
    step = rules.points_step_fen
    cap = eligible * rules.points_max_share_bp // 10_000
    reason = f"At most {rules.points_max_share_bp / 100:g} % of {eligible} fen, in steps of {step} fen."
    if available_points is not None and value_of(brand, available_points) < cap:
        cap = value_of(brand, available_points)
        reason = f"The member's {available_points} points, in steps of {step} fen."
    max_fen = cap // step * step
    return PointsLimit(eligible, max_fen, points_for(brand, max_fen), reason)


@dataclass(frozen=True, slots=True)
class Coupon:
    view: coupons.CouponView
    template: CouponTemplate
    off_fen: int


async def _coupon(
    p: Principal,
    action: policy.Action,
    membership: Membership,
    coupon_id: int | None,
    bill_fen: int,
    lines: Sequence[PurchaseLine],
    store_id: int | None,
) -> Coupon | None:
    if coupon_id is None:
        return None
    view = await coupons.get_coupon(p, action, coupon_id)
    if view.membership_id != membership.id:
        raise DomainError(ErrorCode.NOT_FOUND, "No such coupon.", "couponId")
    template = await CouponTemplate.get(id=view.template_id)
    coupons.check_usable(view, template)
    bill_lines = [coupons.BillLine(x.amount_fen, x.category, x.sku) for x in lines]
    return Coupon(view, template, coupons.discount_fen(template, bill_fen, bill_lines, store_id))


def _store_of(p: Principal, store_id: int | None) -> int | None:
    return p.store_id if p.store_id is not None else store_id


def net_legs(legs: list[Leg], account: AccountRef) -> list[Leg]:
    """The legs with those on ``account`` that name no lots as one (points paid and points earned; points
    given back and taken back): one posting on the account, so that the balance after it is the
    transaction's answer, on a replay too (which reads it from the account's posting)."""
    on = [leg for leg in legs if leg.account == account and leg.draw is None and leg.lot is None]
    if len(on) < 2:
        return legs
    net = sum(leg.amount for leg in on)
    rest = [leg for leg in legs if not any(leg is o for o in on)]
    return [Leg(account, net), *rest] if net else rest


# --- quote --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quote:
    membership: Membership
    bill_fen: int
    coupon_off_fen: int
    limit: PointsLimit
    available_points: int
    wallet: wallets.Wallet

    @property
    def max_points_fen(self) -> int:
        return self.limit.max_fen


async def quote(
    principal: Principal | None,
    membership_id: int,
    bill_fen: int,
    lines: Lines = None,
    coupon_id: int | None = None,
) -> Quote:
    """The most points usable on a bill and what they pay, by the brand's rules; nothing is held."""
    p = policy.require(principal, policy.QUOTE_CHECKOUT)
    bill_fen = v.positive(bill_fen, "billFen")
    bill = purchases.purchase_lines(lines, bill_fen)
    membership = await access.get_membership(p, policy.QUOTE_CHECKOUT, membership_id)
    brand: Brand = membership.brand
    coupon = await _coupon(p, policy.QUOTE_CHECKOUT, membership, coupon_id, bill_fen, bill, p.store_id)
    off = coupon.off_fen if coupon else 0
    points: PointsView = (await points_of([membership.id]))[0]
    rules = await spending_rules.rules_for(brand.id)
    limit = points_limit(rules, brand, bill_fen, bill, off, points.available)
    return Quote(membership, bill_fen, off, limit, points.available, await wallets.wallet_of(membership.id))


# --- checkout -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    transaction: TransactionRecord
    membership: Membership
    points_used: int
    points_earned: int
    points_balance: int  # available points right after
    wallet: wallets.Wallet
    cash_fen: int
    coupon_off_fen: int
    replayed: bool


def _tenders(bill_fen: int, off: int, points_fen: int, stored_value_fen: int) -> int:
    cash = bill_fen - off - points_fen - stored_value_fen
    if cash < 0:
        raise InvalidInput(
            f"Coupon, points and stored value pay {off + points_fen + stored_value_fen} fen of a"
            f" {bill_fen} fen bill.",
            "storedValueFen" if stored_value_fen else "pointsFen",
        )
    return cash


async def checkout(
    ledger: LedgerWriter,
    principal: Principal | None,
    membership_id: int,
    bill_fen: int,
    idempotency_key: str,
    *,
    lines: Lines = None,
    points_fen: int = 0,
    stored_value_fen: int = 0,
    coupon_id: int | None = None,
    broker: LocalBroker | None = None,
) -> CheckoutResult:
    """A store settles a bill: one ledger transaction, all of it or nothing (see the module)."""
    p = policy.require(principal, policy.CHECKOUT)
    key = v.idempotency_key(idempotency_key)
    bill_fen = v.positive(bill_fen, "billFen")
    for value, field in ((points_fen, "pointsFen"), (stored_value_fen, "storedValueFen")):
        if not 0 <= value <= v.MAX_AMOUNT:
            raise InvalidInput(f"Between 0 and {v.MAX_AMOUNT} fen.", field)
    bill = purchases.purchase_lines(lines, bill_fen)
    membership = await access.get_membership(p, policy.CHECKOUT, membership_id)
    brand: Brand = membership.brand
    request: dict[str, Any] = {
        "membership": membership.id,
        "bill_fen": bill_fen,
        "points_fen": points_fen,
        "stored_value_fen": stored_value_fen,
        "coupon": coupon_id,
    }
    if bill:
        request["lines"] = [[x.amount_fen, x.category, x.margin_class, x.sku] for x in bill]
    the_claim = claim(p.idempotency_scope, key, "checkout", **request)
    mine = AccountRef.member(brand.id, membership.id)
    probe = Command(TransactionKind.CHECKOUT, brand.id, (), the_claim, report=mine)

    async def write() -> tuple[Outcome, wallets.Wallet]:
        coupon = await _coupon(p, policy.CHECKOUT, membership, coupon_id, bill_fen, bill, p.store_id)
        off = coupon.off_fen if coupon else 0
        cash = _tenders(bill_fen, off, points_fen, stored_value_fen)
        used = 0
        if points_fen:
            rules = await spending_rules.rules_for(brand.id)
            limit = points_limit(rules, brand, bill_fen, bill, off, None)
            if points_fen % rules.points_step_fen:
                raise InvalidInput(f"Points pay in steps of {rules.points_step_fen} fen.", "pointsFen")
            if points_fen > limit.max_fen:
                raise DomainError(
                    ErrorCode.LIMIT_REACHED,
                    f"{limit.reason} Points may pay {limit.max_fen} fen.",
                    "pointsFen",
                )
            used = points_for(brand, points_fen)
        legs: list[Leg] = []
        if coupon is not None:
            legs += coupons.use_legs(coupon.view)
        if used:
            legs += [Leg(mine, -used), Leg(AccountRef.burn_for(brand.id, membership.id), used)]
        details: dict[str, Any] = {
            "billFen": bill_fen,
            "couponOffFen": off,
            "pointsFen": points_fen,
            "pointsUsed": used,
            "pointValuePoints": brand.point_value_points,
            "pointValueFen": brand.point_value_fen,
            "cashFen": cash,
        }
        if coupon is not None:
            details["couponId"], details["couponCode"] = coupon.view.id, coupon.view.code
        earn = EarnRequest(brand, membership, cash, bill, store_id=p.store_id)
        for _ in range(10):
            wallet = await wallets.wallet_of(membership.id)
            spend = wallets.spend_legs(brand.id, membership.id, stored_value_fen, wallet)

            def build(earned: Any, spend: wallets.Spend = spend) -> Command:
                return Command(
                    kind=TransactionKind.CHECKOUT,
                    brand_id=brand.id,
                    legs=tuple(net_legs([*legs, *spend.legs, *earned.legs], mine)),
                    claim=the_claim,
                    store_id=p.store_id,
                    membership_id=membership.id,
                    actor_key_id=p.key_id,
                    reason="Checkout",
                    details={**details, **spend.details, **earned.details},
                    report=mine,
                    guards=earned.guards,
                )

            try:
                outcome, _ = await post_earn(ledger, earn, build)
                return outcome, wallet
            except DomainError as error:
                # A concurrent payment moved the wallet: read it again (a total it lacks fails in
                # spend_legs, before anything is submitted).
                if error.code is not ErrorCode.INSUFFICIENT_BALANCE:
                    raise
        raise DomainError(ErrorCode.LIMIT_REACHED, "The wallet kept changing; try again.", "storedValueFen")

    before: wallets.Wallet | None = None  # the wallet as the write read it (None: a replay)
    if await claimed(the_claim):
        outcome = await ledger.submit(probe)
    else:
        try:
            outcome, before = await write()
        except DomainError:
            if not await claimed(the_claim):
                raise
            outcome = await ledger.submit(probe)  # a retry of this very request committed meanwhile
    txn = outcome.transaction
    await purchases.after_purchase(ledger, membership, txn, broker=broker)
    d = txn.details
    return CheckoutResult(
        transaction=txn,
        membership=membership,
        points_used=int(d.get("pointsUsed", 0)),
        points_earned=int(d.get("points", 0)),
        points_balance=outcome.report_balance or 0,
        # Right after the checkout, from its postings (a replay: as it is now).
        wallet=wallets.wallet_after(outcome, membership, before)
        if before is not None and not outcome.replayed
        else await wallets.wallet_of(membership.id),
        cash_fen=int(d.get("cashFen", 0)),
        coupon_off_fen=int(d.get("couponOffFen", 0)),
        replayed=outcome.replayed,
    )

"""Refunds of a checkout or a purchase, in full or in part: a new transaction that references it.

``refund`` writes one ``CHECKOUT_REFUND`` transaction (``details.refundOf`` = the original, which is
never edited). Of what was paid (``bill - couponOff``; a purchase recorded with ``recordPurchase`` was
all cash) it refunds ``amountFen``, and every tender goes back in that proportion, computed on the
cumulative amount refunded so far and rounded down, so that partial refunds add up exactly to a full
one: the points used (from the burn account they went to), the stored value (principal and bonus, each
to its own account), and the cash (paid back at the till, outside the hub; the refund says how much).
The coupon comes back (a new lot of 1 with the same expiry) when the whole bill is refunded.

The points the purchase earned are taken back in the same proportion by ``earning.clawback_legs``
(pending lots of the purchase first, then available points, including those this refund gives back).
What the member no longer has is the brand's ``refundClawback`` policy's: ``WITHIN_BALANCE`` (the
default) forgives it and records it as ``clawbackShortfall``; ``DEDUCT_FROM_CASH`` deducts its value at
the purchase's point value (rounded up) from the cash paid back. A member's points never go negative.

What was refunded of a purchase is a ledger guard (``refund:t<id>``) that each refund moves from the
exact value it read: of concurrent refunds each commits from the state the others left (the rest read
again), and together they never refund more than was paid. See docs/spending.md, "Refunds".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub import policy
from hub.auth import Principal
from hub.domain import ClawbackPolicy
from hub.errors import DomainError, ErrorCode, InvalidInput, NotFound
from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Guard, Leg, TransactionRecord
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import LedgerCounter, LedgerTransaction, Membership, TransactionKind
from hub.resolvers import access, coupons, earning, purchases, spending_rules, wallets
from hub.resolvers import validation as v
from hub.resolvers.checkout import net_legs
from hub.resolvers.claims import submit_once

STALE = "transactionId"  # the field of the guard's failure: another refund went first


def refunded_key(transaction_id: int) -> str:
    return f"refund:t{transaction_id}"


@dataclass(frozen=True, slots=True)
class Paid:
    """What a checkout or purchase was paid with (from its details)."""

    payable: int  # the bill less the coupon
    points_used: int
    principal_fen: int
    bonus_fen: int
    cash_fen: int
    earned: int
    coupon_id: int | None
    point_value: tuple[int, int]

    @classmethod
    def of(cls, txn: Any) -> Paid:
        d = txn.details
        if txn.kind == TransactionKind.CHECKOUT:
            return cls(
                int(d["billFen"]) - int(d.get("couponOffFen", 0)),
                int(d.get("pointsUsed", 0)),
                int(d.get("storedValuePrincipalFen", 0)),
                int(d.get("storedValueBonusFen", 0)),
                int(d.get("cashFen", 0)),
                int(d.get("points", 0)),
                d.get("couponId"),
                (int(d["pointValuePoints"]), int(d["pointValueFen"])),
            )
        if txn.kind == TransactionKind.EARN and "amountFen" in d:
            amount = int(d["amountFen"])
            return cls(amount, 0, 0, 0, amount, int(d.get("points", 0)), None, (0, 0))
        raise NotFound("No such checkout or purchase.", "transactionId")


@dataclass(frozen=True, slots=True)
class RefundResult:
    transaction: TransactionRecord
    membership: Membership
    refunded_fen: int
    cash_fen: int  # to pay back at the till
    points_returned: int
    points_clawed_back: int
    stored_value_fen: int
    coupons: list[coupons.CouponView]  # the coupon given back (a full refund)
    points_balance: int
    wallet: wallets.Wallet
    replayed: bool


async def _refunded_so_far(transaction_id: int) -> int:
    row = await LedgerCounter.get_or_none(key=refunded_key(transaction_id))
    return int(row.value) if row is not None else 0


async def refund(
    ledger: LedgerWriter,
    principal: Principal | None,
    transaction_id: int,
    amount_fen: int | None,
    idempotency_key: str,
) -> RefundResult:
    """Refund ``amount_fen`` of what a checkout or purchase was paid (null: all that is left)."""
    p = policy.require(principal, policy.REFUND_CHECKOUT)
    key = v.idempotency_key(idempotency_key)
    if amount_fen is not None:
        amount_fen = v.positive(amount_fen, "amountFen")
    txn = await access.get_transaction(p, policy.REFUND_CHECKOUT, transaction_id, "transactionId")
    if txn.membership_id is None:
        raise NotFound("No such checkout or purchase.", "transactionId")
    paid = Paid.of(txn)
    if await LedgerTransaction.filter(reverses_id=txn.id).exists():
        # Reversed as a whole already: refunding it too would give everything back twice.
        raise DomainError(ErrorCode.ALREADY_REVERSED, "This transaction was reversed.", "transactionId")
    if paid.payable <= 0:
        raise InvalidInput("Nothing was paid for this bill: there is nothing to refund.", "transactionId")
    membership = await access.get_membership(p, policy.REFUND_CHECKOUT, txn.membership_id, "transactionId")
    brand = membership.brand
    vp, vf = paid.point_value if paid.point_value[0] else (brand.point_value_points, brand.point_value_fen)
    mine = AccountRef.member(brand.id, membership.id)
    the_claim = claim(p.idempotency_scope, key, "refundCheckout", transaction=txn.id, amount_fen=amount_fen)
    probe = Command(TransactionKind.CHECKOUT_REFUND, brand.id, (), the_claim, report=mine)

    async def build() -> Command:
        before = await _refunded_so_far(txn.id)
        left = paid.payable - before
        amount = left if amount_fen is None else amount_fen
        if amount <= 0 or amount > left:
            raise DomainError(
                ErrorCode.LIMIT_REACHED, f"{max(left, 0)} fen of this bill are left to refund.", "amountFen"
            )
        after = before + amount

        def share(x: int) -> int:
            return x * after // paid.payable - x * before // paid.payable

        points_back, principal_back, bonus_back = (
            share(paid.points_used),
            share(paid.principal_fen),
            share(paid.bonus_fen),
        )
        cash = share(paid.cash_fen)
        legs: list[Leg] = []
        returned_coupon = False
        if after == paid.payable and paid.coupon_id is not None:
            legs += coupons.return_legs(
                await coupons.get_coupon(p, policy.REFUND_CHECKOUT, int(paid.coupon_id))
            )
            returned_coupon = True
        if points_back:
            legs += [Leg(AccountRef.burn_for(brand.id, membership.id), -points_back), Leg(mine, points_back)]
        legs += wallets.return_legs(brand.id, membership.id, principal_back, bonus_back)
        # Earned points back: pending and available as read, then what this refund returns.
        clawback = await earning.clawback_legs(membership, txn.id, share(paid.earned))
        legs += clawback.legs
        shortfall = clawback.shortfall
        extra = min(shortfall, points_back)
        if extra:
            legs += [Leg(mine, -extra), Leg(AccountRef.issuance_for(brand.id, membership.id), extra)]
            shortfall -= extra
        legs = net_legs(legs, mine)
        rules = await spending_rules.rules_for(brand.id)
        deducted = 0
        if shortfall and rules.refund_clawback == ClawbackPolicy.DEDUCT_FROM_CASH:
            deducted = min(cash, -(-shortfall * vf // vp))
        guard = Guard(
            refunded_key(txn.id),
            delta=amount,
            minimum=after,
            maximum=after,
            code=ErrorCode.LIMIT_REACHED,
            message="Another refund of this bill went first.",
            field=STALE,
        )
        return Command(
            kind=TransactionKind.CHECKOUT_REFUND,
            brand_id=brand.id,
            legs=tuple(legs),
            claim=the_claim,
            store_id=p.store_id,
            membership_id=membership.id,
            actor_key_id=p.key_id,
            reason="Refund",
            details={
                "refundOf": txn.id,
                "refundedFen": amount,
                "cashFen": cash - deducted,
                "cashDeductedFen": deducted,
                "pointsReturned": points_back,
                "storedValuePrincipalFen": principal_back,
                "storedValueBonusFen": bonus_back,
                "couponReturned": returned_coupon,
                "pointsClawedBack": clawback.points + extra,
                "clawbackShortfall": shortfall,
                "clawbackPolicy": str(rules.refund_clawback),
                "cashRefundedFen": cash,
            },
            report=mine,
            guards=(guard,),
        )

    outcome = None
    for _ in range(10):
        try:
            outcome = await submit_once(ledger, the_claim, brand.id, build, probe)
            break
        except DomainError as error:
            stale = error.field == STALE and error.code is ErrorCode.LIMIT_REACHED
            if not stale and error.code not in (ErrorCode.INSUFFICIENT_POINTS, ErrorCode.ALREADY_USED):
                raise
    if outcome is None:
        raise DomainError(ErrorCode.LIMIT_REACHED, "This bill kept changing; try again.", STALE)
    done = outcome.transaction
    d = done.details
    # Tiers count purchases net of refunds: the cash part refunded and the points taken back.
    await purchases.note_refund(txn.id, done, int(d["cashRefundedFen"]), int(d["pointsClawedBack"]))
    return RefundResult(
        transaction=done,
        membership=membership,
        refunded_fen=int(d["refundedFen"]),
        cash_fen=int(d["cashFen"]),
        points_returned=int(d["pointsReturned"]),
        points_clawed_back=int(d["pointsClawedBack"]),
        stored_value_fen=int(d["storedValuePrincipalFen"]) + int(d["storedValueBonusFen"]),
        coupons=await coupons.coupons_issued_by(done.id),
        points_balance=outcome.report_balance or 0,
        wallet=await wallets.wallet_of(membership.id),
        replayed=outcome.replayed,
    )

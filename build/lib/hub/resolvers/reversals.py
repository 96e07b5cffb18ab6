"""HQ reverses a transaction: a new REVERSE transaction that undoes every leg, exactly once.

Reversible: manual adjustments (ADJUST) and redemptions (REDEEM), whose legs are the member's points
and the brand's issuance or burn. Every other kind carries more than its legs (a purchase's earning
records and tier progress, a coupon, a check-in's streak, a partner's statement line) and has its own
undo: refunds, voids, cancellations. They are refused with NOT_REVERSIBLE.

- Each posting of the original is posted back with the opposite sign on the same account. Points the
  original took from the member come back as the lots they were drawn from (same expiry, one credit
  per lot drawn); points it gave are taken back like a redemption (INSUFFICIENT_POINTS when the member
  no longer has them).
- Once: the reversal names the original (``reverses_id``, unique), so a second one is ALREADY_REVERSED,
  whatever its key; a retry with the same idempotency key answers the first reversal.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub import policy
from hub.auth import Principal
from hub.errors import DomainError, ErrorCode
from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Leg, LotTerms, TransactionRecord
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import Account, AccountKind, LotAllocation, Membership, Posting, TransactionKind
from hub.resolvers import access, change_log
from hub.resolvers import validation as v
from hub.resolvers.claims import submit_once

REVERSIBLE = frozenset({TransactionKind.ADJUST, TransactionKind.REDEEM})


@dataclass(frozen=True, slots=True)
class Reversal:
    transaction: TransactionRecord  # the REVERSE transaction
    reversed_id: int
    membership: Membership
    points: int  # the signed change to the member's points
    balance: int  # the member's available points right after the reversal
    replayed: bool


def _ref(account: Account) -> AccountRef:
    return AccountRef(
        account.brand_id,
        account.asset,
        account.kind,
        account.asset_code,
        membership_id=account.membership_id,
        store_id=account.store_id,
        partnership_id=account.partnership_id,
        shard=account.shard,
        counterparty_id=account.counterparty_id,
    )


async def reverse_transaction(
    ledger: LedgerWriter, principal: Principal | None, transaction_id: int, reason: str, idempotency_key: str
) -> Reversal:
    p = policy.require(principal, policy.REVERSE_TRANSACTION)
    key = v.idempotency_key(idempotency_key)
    reason = v.text(reason, "reason")
    original = await access.get_transaction(p, policy.REVERSE_TRANSACTION, transaction_id, "transactionId")
    if TransactionKind(original.kind) not in REVERSIBLE or original.membership_id is None:
        raise DomainError(
            ErrorCode.NOT_REVERSIBLE,
            f"A {original.kind} transaction is not reversed here: use its own undo (refund, void, cancel).",
            "transactionId",
        )
    membership = await access.get_membership(
        p, policy.REVERSE_TRANSACTION, original.membership_id, "transactionId"
    )
    member = AccountRef.member(original.brand_id, membership.id)
    request = claim(p.idempotency_scope, key, "reverseTransaction", transaction=original.id, reason=reason)

    async def build() -> Command:
        postings = await Posting.filter(transaction_id=original.id).select_related("account").order_by("id")
        legs: list[Leg] = []
        for posting in postings:
            ref = _ref(posting.account)
            if posting.amount < 0 and posting.account.kind is AccountKind.MEMBER:
                # The member gets back exactly the lots it paid with (same expiry).
                drawn = await LotAllocation.filter(
                    transaction_id=original.id, lot__account_id=posting.account_id
                ).select_related("lot")
                legs += [Leg(ref, a.amount, lot=LotTerms(expires_at=a.lot.expires_at)) for a in drawn]
            else:
                legs.append(Leg(ref, -posting.amount))
        return Command(
            kind=TransactionKind.REVERSE,
            brand_id=original.brand_id,
            legs=tuple(legs),
            claim=request,
            membership_id=membership.id,
            actor_key_id=p.key_id,
            reason=reason,
            details={"reverses": original.id, "reversedKind": str(original.kind)},
            reverses_id=original.id,
            report=member,
        )

    probe = Command(TransactionKind.REVERSE, original.brand_id, (), request, report=member)
    outcome = await submit_once(ledger, request, original.brand_id, build, probe)
    posting = outcome.posting_on(member)
    result = Reversal(
        outcome.transaction,
        original.id,
        membership,
        posting.amount if posting else 0,
        outcome.report_balance or 0,
        outcome.replayed,
    )
    subject = change_log.Subject("LedgerTransaction", outcome.transaction.id, original.brand_id)
    after = {
        "reverses": original.id,
        "membership_id": membership.id,
        "points": result.points,
        "reason": reason,
    }
    await change_log.record_once(p, policy.REVERSE_TRANSACTION, subject, after=after)
    return result

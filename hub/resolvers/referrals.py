"""Referral: a member's code, signing up with it, and the rewards on the first qualifying purchase.

- A membership's code is made on request (``issueReferralCode``), once: asking again gives the same.
- ``enrollMember(referralCode:)`` ties the new membership to the code's owner (``Membership.referrer``
  and one ``Referral`` row per referee, written with the membership). Only a new membership of the
  code's brand can use it: the owner cannot refer itself (it is already a member), and since a
  membership gets its referrer only when it is created, no chain of referrals can loop back.
- The brand's ``REFERRAL`` rule in force at a purchase decides the rewards: after the referee's first
  purchase of at least its minimum, the referee and the referrer each get their points in a ledger
  transaction whose idempotency key names the referral and the side (``referral/referral:<id>:referee``)
  and whose request hash names nothing else, so however often purchases are retried, refunded and
  bought again, each side is rewarded once. The referrer's rewards count on a guard
  (``referral:referrer:m<id>``) bounded by the rule's ``maxPerReferrer``: past it the referee is
  still rewarded, the referrer is not (``referrerCapped``).
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from hub import policy
from hub.auth import Principal
from hub.domain import ReferralStatus
from hub.errors import DomainError, ErrorCode
from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Guard, Leg, LotTerms
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import IdempotencyClaim, request_hash
from hub.models import Brand, Membership, Referral, ReferralCode, TransactionKind
from hub.resolvers import access, expiry_policy
from hub.resolvers.earn_rules import ReferralTerms
from hub.resolvers.earning import rules_in_force

log = logging.getLogger(__name__)
REFERRAL_SCOPE = "referral"
# No 0/O, 1/I/L: a code is read out loud and typed at a till.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


async def issue_code(principal: Principal | None, membership_id: int) -> ReferralCode:
    """The membership's referral code, made on first request."""
    membership = await access.get_membership(principal, policy.ISSUE_REFERRAL_CODE, membership_id)
    for _ in range(5):
        existing = await ReferralCode.get_or_none(membership_id=membership.id)
        if existing is not None:
            return existing
        try:
            return await ReferralCode.create(
                code=new_code(), membership_id=membership.id, brand_id=membership.brand_id
            )
        except IntegrityError:
            continue  # the same membership at the same moment, or (rarely) a code already taken
    raise RuntimeError("could not make a referral code")


async def code_of(membership_id: int) -> str | None:
    row = await ReferralCode.get_or_none(membership_id=membership_id)
    return row.code if row else None


def _invalid(message: str) -> DomainError:
    return DomainError(ErrorCode.REFERRAL_INVALID, message, "referralCode")


async def referrer_for(brand_id: int, code: str, member_id: int | None) -> Membership:
    """The membership that owns ``code`` in this brand, for a person (``member_id`` if known) who is
    not yet a member of it."""
    row = await ReferralCode.get_or_none(code=code.strip().upper(), brand_id=brand_id)
    if row is None:
        raise _invalid("No such referral code in this brand.")
    referrer = await Membership.get(id=row.membership_id)
    if member_id is not None and referrer.member_id == member_id:
        raise _invalid("A member cannot refer itself.")
    return referrer


def check_existing(existing: Membership, referrer: Membership | None) -> None:
    """Enrolling an existing member again: a referral code applies to new members only (the same
    request retried is fine)."""
    if referrer is not None and existing.referrer_id != referrer.id:
        raise _invalid("Already a member: a referral code applies to new members only.")


async def record_referral(membership: Membership, referrer: Membership, using_db: BaseDBAsyncClient) -> None:
    """Within the enrolment's transaction: the new membership was referred by ``referrer``."""
    if referrer.id == membership.id or referrer.member_id == membership.member_id:
        raise _invalid("A member cannot refer itself.")
    await Referral.create(
        brand_id=membership.brand_id,
        referrer_id=referrer.id,
        referee_id=membership.id,
        status=ReferralStatus.PENDING,
        using_db=using_db,
    )


def _reward(
    referral: Referral,
    side: str,
    membership_id: int,
    points: int,
    terms: ReferralTerms,
    purchase: int,
    lot: LotTerms | None = None,
) -> Command:
    brand_id = referral.brand_id
    guards: tuple[Guard, ...] = ()
    if side == "referrer" and terms.max_per_referrer is not None:
        guards = (
            Guard(
                f"referral:referrer:m{membership_id}",
                delta=1,
                maximum=terms.max_per_referrer,
                code=ErrorCode.LIMIT_REACHED,
                message="This member referred as many members as the brand rewards.",
                field="referrer",
            ),
        )
    return Command(
        kind=TransactionKind.REFERRAL,
        brand_id=brand_id,
        legs=(
            Leg(AccountRef.issuance_for(brand_id, membership_id), -points),
            Leg(AccountRef.member(brand_id, membership_id), points, lot=lot),
        ),
        # Nothing but the referral and the side in the hash: every later attempt replays the first.
        claim=IdempotencyClaim(
            REFERRAL_SCOPE,
            f"referral:{referral.id}:{side}",
            request_hash("referral", referral=referral.id, side=side),
        ),
        membership_id=membership_id,
        reason="Referral reward",
        details={
            "referralId": referral.id,
            "side": side,
            "ruleId": terms.rule_id,
            "version": terms.version,
            "points": points,
            "purchaseTransactionId": purchase,
        },
        guards=guards,
    )


async def reward_after_purchase(
    ledger: LedgerWriter,
    brand: Brand,
    referee: Membership,
    purchase_transaction_id: int,
    amount_fen: int,
    at: datetime,
) -> Referral | None:
    """Reward a pending referral of ``referee`` if this purchase qualifies under the rule in force."""
    referral = await Referral.get_or_none(referee_id=referee.id)
    if referral is None or referral.status is ReferralStatus.REWARDED:
        return None
    rule = (await rules_in_force(brand, at)).referral
    if rule is None:
        return None  # no referral rule in force: the referral waits for a purchase under one
    terms = ReferralTerms.of(rule)
    if terms.min_amount_fen is not None and amount_fen < terms.min_amount_fen:
        return None
    sides = [
        (side, mid, points)
        for side, mid, points in (
            ("referee", referee.id, terms.referee_points),
            ("referrer", referral.referrer_id, terms.referrer_points),
        )
        if points > 0
    ]
    lot = await expiry_policy.earned_lot(brand, at)  # dated like the purchase's own points
    results = await ledger.submit_many(
        [
            _reward(referral, side, mid, points, terms, purchase_transaction_id, lot)
            for side, mid, points in sides
        ]
    )
    ids: dict[str, int | None] = {"referee": None, "referrer": None}
    capped = False
    for (side, _, _), result in zip(sides, results, strict=True):
        if isinstance(result, DomainError) and result.code is ErrorCode.LIMIT_REACHED and side == "referrer":
            capped = True
        elif isinstance(result, BaseException):
            raise result
        else:
            ids[side] = result.transaction.id
    await Referral.filter(id=referral.id, status=ReferralStatus.PENDING).update(
        status=ReferralStatus.REWARDED,
        purchase_transaction_id=purchase_transaction_id,
        referee_transaction_id=ids["referee"],
        referrer_transaction_id=ids["referrer"],
        referrer_capped=capped,
        rewarded_at=datetime.now(UTC),
    )
    return await Referral.get(id=referral.id)


async def referral_of(referee_id: int) -> Referral | None:
    return await Referral.get_or_none(referee_id=referee_id)


async def referrals_made(membership: Membership) -> int:
    return await Referral.filter(referrer_id=membership.id).count()

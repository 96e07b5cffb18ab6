"""Points transfers: a member gives points to another member of the same brand; HQ merges memberships.

One ledger command of kind ``transfer``: a debit of the giver's available points (drawn soonest expiry
first, as any spend) and a credit to the receiver that mirrors it (``Leg.mirror``), so the receiver
gets one lot per lot drawn with the same expiry date: a transfer never extends the points' life.
Pending points are another account, so only matured points can move.

Limits (``LifecycleSettings``, HQ): transfers on or off, a minimum per transfer, a maximum per giver
and brand-local day. The daily maximum is a ledger guard (``transfer:m<giver>:<day>``), and the
balance is the engine's, so of 20 concurrent transfers of 100 from a balance of 100 exactly one
commits, and no two transfers pass the daily maximum together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hub import policy
from hub.auth import Principal
from hub.domain import TransactionKind
from hub.errors import DomainError, ErrorCode, InvalidInput, NotFound
from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Guard, Leg, Outcome, TransactionRecord
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import Account, Brand, Membership
from hub.resolvers import access
from hub.resolvers import validation as v
from hub.resolvers.lifecycle_settings import settings_of

ATTEMPTS = 3  # a merge reads the balance again when a spend moved it meanwhile


@dataclass(frozen=True, slots=True)
class TransferResult:
    transaction: TransactionRecord
    membership: Membership  # the giver (a merge: the membership merged from)
    receiver: Membership
    points: int
    balance: int  # the giver's available points right after it
    replayed: bool


def _moved(outcome: Outcome, giver: Membership, receiver: Membership) -> TransferResult:
    mine = AccountRef.member(giver.brand_id, giver.id)
    posting = outcome.posting_on(mine)
    return TransferResult(
        outcome.transaction,
        giver,
        receiver,
        -posting.amount if posting else 0,
        outcome.report_balance or 0,
        outcome.replayed,
    )


def _legs(giver: Membership, receiver: Membership, points: int) -> tuple[Leg, ...]:
    if not points:
        return ()
    return (
        Leg(AccountRef.member(giver.brand_id, giver.id), -points),
        Leg(AccountRef.member(receiver.brand_id, receiver.id), points, mirror=0),
    )


async def transfer_points(
    ledger: LedgerWriter,
    principal: Principal | None,
    membership_id: int,
    to_phone: str,
    points: int,
    idempotency_key: str,
    message: str = "",
) -> TransferResult:
    """A member gives ``points`` of its available points to the brand's member with ``to_phone``."""
    p = policy.require(principal, policy.TRANSFER_POINTS)
    key = v.idempotency_key(idempotency_key)
    points = v.positive(points, "points")
    message = v.text(message, "message", max_length=200, required=False)
    number = v.phone(to_phone, "toPhone")
    giver = await access.get_membership(p, policy.TRANSFER_POINTS, membership_id)
    receiver = await Membership.get_or_none(brand_id=giver.brand_id, member__phone=number)
    if receiver is None:
        raise NotFound("No member with that phone in this brand.", "toPhone")
    if receiver.id == giver.id:
        raise InvalidInput("Points cannot be transferred to the same membership.", "toPhone")
    limits = await settings_of(giver.brand_id)
    if not limits.transfers_enabled:
        raise DomainError(ErrorCode.TRANSFERS_CLOSED, "This brand does not allow transfers.", "membershipId")
    if points < limits.transfer_min:
        raise InvalidInput(f"At least {limits.transfer_min} points per transfer.", "points")
    guards: tuple[Guard, ...] = ()
    if limits.transfer_max_per_day is not None:
        brand = await Brand.get(id=giver.brand_id)
        day = datetime.now(UTC).astimezone(ZoneInfo(brand.timezone)).date().isoformat()
        guards = (
            Guard(
                f"transfer:m{giver.id}:{day}",
                points,
                maximum=limits.transfer_max_per_day,
                code=ErrorCode.LIMIT_REACHED,
                message=f"At most {limits.transfer_max_per_day} points may be transferred a day.",
                field="points",
            ),
        )
    mine = AccountRef.member(giver.brand_id, giver.id)
    outcome = await ledger.submit(
        Command(
            kind=TransactionKind.TRANSFER,
            brand_id=giver.brand_id,
            legs=_legs(giver, receiver, points),
            claim=claim(
                p.idempotency_scope,
                key,
                "transferPoints",
                membership=giver.id,
                to=receiver.id,
                points=points,
                message=message,
            ),
            membership_id=giver.id,
            actor_key_id=p.key_id,
            reason=message,
            details={"fromMembershipId": giver.id, "toMembershipId": receiver.id, "points": points},
            report=mine,
            guards=guards,
        )
    )
    return _moved(outcome, giver, receiver)


async def merge_points(
    ledger: LedgerWriter,
    principal: Principal | None,
    from_membership_id: int,
    to_membership_id: int,
    reason: str,
    idempotency_key: str,
) -> TransferResult:
    """HQ moves all of one membership's available points to another of the brand (a phone number that
    changed owner), each lot with its expiry date. Not bound by the member transfer limits."""
    p = policy.require(principal, policy.MERGE_POINTS)
    key = v.idempotency_key(idempotency_key)
    reason = v.text(reason, "reason", max_length=200)
    source = await access.get_membership(p, policy.MERGE_POINTS, from_membership_id, "fromMembershipId")
    target = await access.get_membership(p, policy.MERGE_POINTS, to_membership_id, "toMembershipId")
    if target.brand_id != source.brand_id:
        # HQ reaches one brand only; the platform could name two: points never cross brands.
        raise NotFound("No such membership.", "toMembershipId")
    if target.id == source.id:
        raise InvalidInput("Choose two different memberships.", "toMembershipId")
    mine = AccountRef.member(source.brand_id, source.id)
    request = claim(
        p.idempotency_scope, key, "mergePoints", source=source.id, target=target.id, reason=reason
    )
    for attempt in range(1, ATTEMPTS + 1):
        # Everything available now; a retry of the same request replays whatever the first one moved.
        account = await Account.get_or_none(key=mine.key)
        points = int(account.balance) if account else 0
        try:
            outcome = await ledger.submit(
                Command(
                    kind=TransactionKind.TRANSFER,
                    brand_id=source.brand_id,
                    legs=_legs(source, target, points),
                    claim=request,
                    membership_id=source.id,
                    actor_key_id=p.key_id,
                    reason=reason,
                    details={
                        "fromMembershipId": source.id,
                        "toMembershipId": target.id,
                        "points": points,
                        "merge": True,
                    },
                    report=mine,
                )
            )
        except DomainError as error:
            if error.code is ErrorCode.INSUFFICIENT_POINTS and attempt < ATTEMPTS:
                continue  # spent meanwhile: read the balance again
            raise
        return _moved(outcome, source, target)
    raise AssertionError("unreachable")

"""Earning, redeeming and adjusting points, and reading balances and history.

Every write carries the caller's idempotency key. Its scope is the caller (a store's receipt numbers
are its own), and the stored request hash covers everything else in the request, so a retry returns
the first result and a reused key with other content is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.queryset import QuerySet

from hub.auth import Principal
from hub.ledger.accounts import member_key, shard_for, system_key
from hub.ledger.engine import IdempotencyClaim, Leg, post_transaction
from hub.models import (
    Account,
    AccountKind,
    Brand,
    LedgerTransaction,
    Lot,
    Membership,
    Posting,
    Role,
    TransactionKind,
)
from hub.resolvers import validation as v
from hub.resolvers.access import get_membership, require, require_brand
from hub.resolvers.brands import points_for_purchase


@dataclass
class PointsResult:
    transaction: LedgerTransaction
    membership: Membership
    points: int  # signed change to the member's points
    balance: int  # the member's available points right after this transaction
    replayed: bool


async def member_account(membership: Membership) -> Account:
    return await Account.get(key=member_key(membership.brand_id, membership.id))


async def _move_points(
    membership: Membership,
    kind: TransactionKind,
    points: int,
    counterpart: AccountKind,
    claim: IdempotencyClaim,
    *,
    store_id: int | None = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> PointsResult:
    """Post ``points`` (signed, as the member sees it) between the member and a brand account.

    The brand side is the issuance or burn shard of this membership (see ``hub.ledger.accounts``).
    """
    brand_id = membership.brand_id
    mine = member_key(brand_id, membership.id)
    legs = []
    if points:
        legs = [
            Leg(system_key(brand_id, counterpart, shard_for(membership.id)), -points),
            Leg(mine, points),
        ]
    posted = await post_transaction(
        brand_id=brand_id,
        kind=kind,
        legs=legs,
        claim=claim,
        store_id=store_id,
        membership_id=membership.id,
        reason=reason,
        details=details,
    )
    locked = next((a for a in posted.accounts.values() if a.key == mine), None)
    # A replay, or a purchase too small to earn a point, locked nothing: read the account.
    account_id, balance = (locked.id, locked.balance) if locked else await _id_and_balance(membership)
    posting = posted.posting_on(account_id)
    if posting is None:
        return PointsResult(posted.transaction, membership, 0, balance, posted.replayed)
    return PointsResult(
        posted.transaction, membership, posting.amount, posting.balance_after, posted.replayed
    )


async def _id_and_balance(membership: Membership) -> tuple[int, int]:
    account = await member_account(membership)
    return account.id, account.balance


async def record_purchase(
    principal: Principal | None, membership_id: int, amount_fen: int, idempotency_key: str
) -> PointsResult:
    p = require(principal, Role.STORE)
    key = v.idempotency_key(idempotency_key)
    amount_fen = v.positive(amount_fen, "amountFen")
    membership = await get_membership(p, membership_id)
    brand: Brand = membership.brand  # loaded with the membership
    points = points_for_purchase(brand, amount_fen)
    request = v.request_hash("recordPurchase", membership=membership.id, amount_fen=amount_fen)
    details = {
        "amountFen": amount_fen,
        "earnPoints": brand.earn_points,
        "earnUnitFen": brand.earn_unit_fen,
        "rounding": "down",
        "points": points,
    }
    return await _move_points(
        membership,
        TransactionKind.EARN,
        points,
        AccountKind.ISSUANCE,
        IdempotencyClaim(p.idempotency_scope, key, request),
        store_id=p.store_id,
        details=details,
    )


async def redeem_points(
    principal: Principal | None, membership_id: int, points: int, reason: str, idempotency_key: str
) -> PointsResult:
    p = require(principal, Role.STORE)
    key = v.idempotency_key(idempotency_key)
    points = v.positive(points, "points")
    reason = v.text(reason, "reason")
    membership = await get_membership(p, membership_id)
    request = v.request_hash("redeemPoints", membership=membership.id, points=points, reason=reason)
    return await _move_points(
        membership,
        TransactionKind.REDEEM,
        -points,
        AccountKind.BURN,
        IdempotencyClaim(p.idempotency_scope, key, request),
        store_id=p.store_id,
        reason=reason,
    )


async def adjust_points(
    principal: Principal | None, membership_id: int, points: int, reason: str, idempotency_key: str
) -> PointsResult:
    """HQ corrects a balance. Up is issued like an earn; down is burned like a redemption."""
    membership = await get_membership(principal, membership_id)
    p = require_brand(principal, membership.brand_id, Role.BRAND)
    key = v.idempotency_key(idempotency_key)
    points = v.nonzero(points, "points")
    reason = v.text(reason, "reason")
    request = v.request_hash("adjustPoints", membership=membership.id, points=points, reason=reason)
    return await _move_points(
        membership,
        TransactionKind.ADJUST,
        points,
        AccountKind.ISSUANCE if points > 0 else AccountKind.BURN,
        IdempotencyClaim(p.idempotency_scope, key, request),
        reason=reason,
    )


async def pending_points(account: Account) -> int:
    """Points in lots that have not matured yet (earned inside a return window)."""
    lots = await Lot.filter(account_id=account.id, remaining__gt=0, matures_at__gt=datetime.now(UTC))
    return sum(lot.remaining for lot in lots)


def history(account: Account) -> QuerySet[Posting]:
    return Posting.filter(account_id=account.id)

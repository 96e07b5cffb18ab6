"""Lots: every member credit is a lot; every member debit draws from lots, soonest expiry first."""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from hub.models import Lot, LotAllocation

_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


def spend_order(lot: Lot) -> tuple[datetime, int]:
    """Soonest expiry first; lots that never expire last; older lots first among equals."""
    return (lot.expires_at or _FAR_FUTURE, lot.id)


async def draw_from_lots(
    conn: BaseDBAsyncClient, transaction_id: int, account_id: int, amount: int
) -> list[LotAllocation]:
    """Consume ``amount`` from the account's available lots. The caller holds the account lock."""
    now = datetime.now(UTC)
    open_lots = await Lot.filter(account_id=account_id, remaining__gt=0).using_db(conn)
    available = [lot for lot in open_lots if lot.matures_at is None or lot.matures_at <= now]
    allocations: list[LotAllocation] = []
    left = amount
    for lot in sorted(available, key=spend_order):
        if left == 0:
            break
        take = min(left, lot.remaining)
        lot.remaining -= take
        left -= take
        await Lot.filter(id=lot.id).using_db(conn).update(remaining=lot.remaining)
        allocations.append(LotAllocation(transaction_id=transaction_id, lot_id=lot.id, amount=take))
    if left:
        # The stored balance allowed the debit but the lots do not cover it: the ledger is corrupt.
        raise RuntimeError(f"lots of account {account_id} do not cover a debit of {amount}")
    await LotAllocation.bulk_create(allocations, using_db=conn)
    return allocations

"""Lots: every member credit is a lot; every member debit draws from lots, soonest expiry first."""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from hub.models import Lot, LotAllocation

# Lots read per query: a debit reads only as many as it needs, however many the member holds.
CHUNK = 50


async def draw_from_lots(
    conn: BaseDBAsyncClient, transaction_id: int, account_id: int, amount: int
) -> list[LotAllocation]:
    """Consume ``amount`` from the account's available lots. The caller holds the account lock.

    Order: soonest expiry first, lots that never expire last, older lots first among equals. The two
    groups are read separately because databases disagree on where NULL sorts.
    """
    now = datetime.now(UTC)
    allocations: list[LotAllocation] = []
    left = amount
    for expiring in (True, False):
        while left:
            query = Lot.filter(
                Q(matures_at__isnull=True) | Q(matures_at__lte=now),
                account_id=account_id,
                remaining__gt=0,
                expires_at__isnull=not expiring,
            )
            ordered = query.order_by("expires_at", "id") if expiring else query.order_by("id")
            lots = await ordered.limit(CHUNK).using_db(conn)
            if not lots:
                break
            for lot in lots:
                take = min(left, lot.remaining)
                left -= take
                # Every lot but the last one touched is emptied, so the next read starts past them.
                await Lot.filter(id=lot.id).using_db(conn).update(remaining=lot.remaining - take)
                allocations.append(LotAllocation(transaction_id=transaction_id, lot_id=lot.id, amount=take))
                if left == 0:
                    break
    if left:
        # The stored balance allowed the debit but the lots do not cover it: the ledger is corrupt.
        raise RuntimeError(f"lots of account {account_id} do not cover a debit of {amount}")
    await LotAllocation.bulk_create(allocations, using_db=conn)
    return allocations

"""Reading the ledger back: balance events after a sequence number, for replay and gap filling."""

from __future__ import annotations

from typing import Any

from hub.ledger.engine import event_payload
from hub.models import Account, Posting


async def events_after(
    account: Account, after_sequence: int, up_to: int | None = None
) -> list[dict[str, Any]]:
    query = Posting.filter(account_id=account.id, sequence__gt=after_sequence)
    if up_to is not None:
        query = query.filter(sequence__lte=up_to)
    postings = await query.order_by("sequence").prefetch_related("transaction")
    return [event_payload(p, account, p.transaction) for p in postings]

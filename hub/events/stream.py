"""A gap-free, duplicate-free stream of balance events for a set of accounts.

Subscribe to the broker first, then read what was missed from the ledger, then pass live events on.
Per account, an event whose sequence was already sent is dropped, and a jump in sequence (an event lost
by the broker, or a slow consumer) is filled from the ledger before the event itself is sent.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

from hub.events.broker import RESYNC, LocalBroker
from hub.ledger.engine import channel_for
from hub.ledger.history import events_after
from hub.models import Account


async def balance_events(
    broker: LocalBroker,
    accounts: list[Account],
    after: Mapping[int, int],
) -> AsyncGenerator[dict[str, Any], None]:
    """Yield events for ``accounts``; ``after`` maps an account id to the last sequence seen."""
    by_id = {a.id: a for a in accounts}
    async with broker.subscribe(channel_for(a.id) for a in accounts) as sub:
        last: dict[int, int] = {}
        for acct in accounts:
            if acct.id in after:
                last[acct.id] = after[acct.id]
                for event in await events_after(acct, after[acct.id]):
                    last[acct.id] = event["sequence"]
                    yield event
            else:
                fresh = await Account.get(id=acct.id)
                last[acct.id] = fresh.sequence
        while True:
            message = await sub.get()
            if message is RESYNC:
                for acct in accounts:
                    for event in await events_after(acct, last[acct.id]):
                        last[acct.id] = event["sequence"]
                        yield event
                continue
            account_id = message["accountId"]
            seq = message["sequence"]
            if account_id not in by_id or seq <= last[account_id]:
                continue
            if seq > last[account_id] + 1:
                for event in await events_after(by_id[account_id], last[account_id], seq - 1):
                    yield event
            last[account_id] = seq
            yield message

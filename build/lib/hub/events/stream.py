"""A gap-free, duplicate-free stream of balance events for a set of accounts.

Subscribe to the broker first, then read what was missed from the ledger, then pass live events on.
Per account, an event whose sequence was already sent is dropped, and a jump in sequence (an event lost
by the broker, or one that took another path) is filled from the ledger before the event itself is
sent. ``RESYNC`` (a queue overflow, or a broker reconnect) re-reads every account from the ledger.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

from hub.events.broker import RESYNC, LocalBroker
from hub.ledger.events import BalanceEvent
from hub.ledger.history import AccountView, events_after, sequences


async def balance_events(
    broker: LocalBroker, accounts: list[AccountView], after: Mapping[int, int]
) -> AsyncGenerator[BalanceEvent, None]:
    """Yield events for ``accounts``; ``after`` maps an account id to the last sequence seen.

    An account not in ``after`` starts live: from its sequence once the subscription is in place.
    """
    by_id = {a.id: a for a in accounts}
    async with broker.subscribe(by_id) as sub:
        fresh = [a.id for a in accounts if a.id not in after]
        last: dict[int, int] = {**(await sequences(fresh) if fresh else {}), **after}
        for acct in accounts:
            if acct.id in after:
                for event in await events_after(acct, after[acct.id]):
                    last[acct.id] = event.sequence
                    yield event
        while True:
            message = await sub.get()
            if message is RESYNC:
                for acct in accounts:
                    for event in await events_after(acct, last[acct.id]):
                        last[acct.id] = event.sequence
                        yield event
                continue
            assert isinstance(message, BalanceEvent)
            account_id, seq = message.account_id, message.sequence
            if seq <= last[account_id]:
                continue
            if seq > last[account_id] + 1:
                for event in await events_after(by_id[account_id], last[account_id], seq - 1):
                    yield event
            last[account_id] = seq
            yield message

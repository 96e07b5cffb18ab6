"""A brand's live activity: every balance event of its members as it commits (the console's feed)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from hub import policy
from hub.auth import Principal
from hub.events.broker import LocalBroker, brand_topic
from hub.ledger.events import BalanceEvent
from hub.resolvers.access import get_brand


async def watch_brand(
    principal: Principal | None, broker: LocalBroker, brand_id: int
) -> AsyncGenerator[BalanceEvent, None]:
    """Balance events of the brand's member accounts (available and pending) from now on.

    A live feed, not a record: nothing missed before the subscription started is replayed, and a
    ``RESYNC`` (a slow consumer, a broker reconnect) is skipped; each membership's ``history`` and
    ``balanceChanged(afterSequence:)`` are the gap-free way to follow one account. A brand out of the
    caller's reach is NOT_FOUND, exactly like a missing one.
    """
    brand = await get_brand(principal, policy.WATCH_BRAND_ACTIVITY, brand_id)
    async with broker.subscribe([brand_topic(brand.id)]) as sub:
        while True:
            message = await sub.get()
            if isinstance(message, BalanceEvent):
                yield message

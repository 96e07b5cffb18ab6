"""The outbox relay: publishes committed balance events, in outbox order, then marks them sent.

Each process runs one relay. A commit in this process wakes it at once; a poll picks up rows that a
process left behind when it died between commit and publish. On PostgreSQL a transaction-scoped
advisory lock lets one relay at a time publish, so events leave in id order, which is commit order per
account (a later posting on an account can only be written after the earlier one committed).
Publishing is at least once: a relay that dies after publishing and before marking publishes again,
and subscribers drop what they have already seen by its sequence number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from hub.events.broker import LocalBroker

log = logging.getLogger(__name__)

_RELAY_LOCK_ID = 0x46484F42  # "FHOB"
BATCH = 500
BATCH_WAIT_SECONDS = 0.005
_wake: asyncio.Event | None = None


def wake_relay() -> None:
    if _wake is not None:
        _wake.set()


async def publish_pending(broker: LocalBroker) -> int:
    """Publish one batch of unsent events; returns how many were sent."""
    if connections.get("default").capabilities.dialect != "postgres":
        # SQLite has one writer; a read-then-write transaction would only add "database is locked".
        return await _publish_batch(broker, connections.get("default"))
    async with in_transaction() as conn:
        _, rows = await conn.execute_query("SELECT pg_try_advisory_xact_lock($1) AS ok", [_RELAY_LOCK_ID])
        if not rows[0]["ok"]:
            return 0
        return await _publish_batch(broker, conn)


async def _publish_batch(broker: LocalBroker, conn: BaseDBAsyncClient) -> int:
    from hub.models import OutboxEvent

    events = await OutboxEvent.filter(published_at__isnull=True).order_by("id").limit(BATCH).using_db(conn)
    if events:
        await broker.publish_many([(event.channel, event.payload) for event in events])
        await (
            OutboxEvent.filter(id__in=[e.id for e in events])
            .using_db(conn)
            .update(published_at=datetime.now(UTC))
        )
    return len(events)


async def run_relay(broker: LocalBroker, poll_seconds: float) -> None:
    global _wake
    _wake = asyncio.Event()
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_wake.wait(), timeout=poll_seconds)
            # Under load, let a few more commits land so one relay transaction carries them all.
            await asyncio.sleep(BATCH_WAIT_SECONDS)
        _wake.clear()
        try:
            while await publish_pending(broker) == BATCH:
                pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("outbox relay failed; retrying on the next tick")
            await asyncio.sleep(poll_seconds)


def stop_relay() -> None:
    global _wake
    _wake = None

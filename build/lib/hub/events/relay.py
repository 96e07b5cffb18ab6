"""The outbox relay: publishes the balance events that a process committed but did not publish.

The committing process publishes its events itself, right after the commit (``hub.events.publisher``).
What is still unpublished after a grace period was left behind by a process that died between commit
and publish, or whose broker link failed: each process's relay polls for such rows and publishes them.

The scan reads the partial index of unpublished rows, so it costs the same however many published rows
the outbox keeps. On PostgreSQL a transaction-scoped advisory lock lets one relay at a time read a
batch, and it is released before anything is sent: a stalled broker link on one process never makes
another wait. Publishing is at least once (two relays, or a relay and a slow publisher, may send the
same event); subscribers drop what they have already seen by its sequence number.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta

from tortoise import connections
from tortoise.transactions import in_transaction

from hub import metrics
from hub.db import sql
from hub.events.broker import LocalBroker
from hub.events.publisher import mark_published
from hub.ledger.events import BalanceEvent

log = logging.getLogger(__name__)

_RELAY_LOCK_ID = 0x46484F42  # "FHOB"
BATCH = 500


async def _unpublished(grace_seconds: float) -> list[tuple[int, BalanceEvent]]:
    cutoff = datetime.now(UTC) - timedelta(seconds=grace_seconds)
    query = (
        "SELECT id, payload FROM outbox_event WHERE published_at IS NULL AND created_at < ?"
        f" ORDER BY id LIMIT {BATCH}"
    )
    conn = connections.get("default")
    if conn.capabilities.dialect != "postgres":
        _, rows = await conn.execute_query(query, [cutoff])
    else:
        async with in_transaction() as tx:
            _, lock = await tx.execute_query("SELECT pg_try_advisory_xact_lock($1) AS ok", [_RELAY_LOCK_ID])
            if not lock[0]["ok"]:
                return []
            _, rows = await tx.execute_query(sql(tx, query), [cutoff])
    return [(row["id"], BalanceEvent.from_json(_json(row["payload"]))) for row in rows]


def _json(value: object) -> dict:
    return json.loads(value) if isinstance(value, str | bytes) else value  # type: ignore[return-value]


async def recover(broker: LocalBroker, grace_seconds: float, send_timeout: float = 5.0) -> int:
    """Publish one batch of events left unpublished for longer than the grace period."""
    rows = await _unpublished(grace_seconds)
    if rows:
        events = [event for _, event in rows]
        log.info("relay: publishing %d events a process left unpublished", len(events))
        broker.deliver(events)
        await asyncio.wait_for(broker.send(events), send_timeout)
        metrics.RELAY_RECOVERED.inc(len(events))
        await mark_published([outbox_id for outbox_id, _ in rows])
    return len(rows)


async def run_relay(broker: LocalBroker, poll_seconds: float, grace_seconds: float) -> None:
    while True:
        try:
            while await recover(broker, grace_seconds) == BATCH:
                pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("outbox relay failed; retrying on the next tick")
        with contextlib.suppress(TimeoutError):
            await asyncio.sleep(poll_seconds)

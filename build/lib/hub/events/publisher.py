"""Live events straight from the commit: the engine's commit hook in a serving process.

Right after a batch commits, its events go to this process's subscribers at once and, through the
broker, to the other processes. Nothing here blocks the writer: the hook only queues, and one task
sends. Their outbox rows are marked published a little later, many batches in one statement every
``mark_seconds`` (an UPDATE per batch would be a commit per batch); the relay's grace period is far
longer. Events whose sending fails stay unmarked in the outbox, and the relay publishes them after its
grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from tortoise import connections

from hub import metrics
from hub.db import sql
from hub.events.broker import LocalBroker
from hub.ledger.events import BalanceEvent, CommittedBatch

log = logging.getLogger(__name__)


async def mark_published(outbox_ids: list[int], chunk: int = 1000) -> None:
    conn = connections.get("default")
    now = datetime.now(UTC)
    for start in range(0, len(outbox_ids), chunk):
        ids = outbox_ids[start : start + chunk]
        marks = ", ".join("?" * len(ids))
        await conn.execute_query(
            sql(conn, f"UPDATE outbox_event SET published_at = ? WHERE id IN ({marks})"), [now, *ids]
        )


def _observe(batches: list[CommittedBatch], sent: int) -> None:
    now = datetime.now(UTC)
    metrics.RELAY_PUBLISHED.inc(sent)
    metrics.RELAY_BATCH_SIZE.observe(sent)
    for batch in batches:
        if batch.transactions:
            lag = (now - batch.transactions[0].created_at).total_seconds()
            metrics.RELAY_LAG.observe(max(0.0, lag))


class Publisher:
    def __init__(self, broker: LocalBroker, send_timeout: float = 5.0, mark_seconds: float = 0.25) -> None:
        self.broker = broker
        self.send_timeout = send_timeout
        self.mark_seconds = mark_seconds
        self._pending: list[CommittedBatch] = []
        self._sent: list[int] = []  # outbox ids sent, not yet marked
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._marker: asyncio.Task[None] | None = None

    def on_commit(self, batch: CommittedBatch) -> None:
        """The engine's commit hook: deliver here now, send and mark in the background."""
        if not batch.events:
            return
        self.broker.deliver(batch.events)
        self._pending.append(batch)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="publisher")
        self._marker = asyncio.create_task(self._mark_every(), name="publisher-marks")

    async def close(self) -> None:
        await self.flush()
        for task in (self._task, self._marker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def flush(self) -> None:
        """Send and mark what is queued (shutdown, tests)."""
        while self._pending:
            await self._send_pending()
        await self._mark()

    async def _mark_every(self) -> None:
        while True:
            await asyncio.sleep(self.mark_seconds)
            try:
                await self._mark()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("marking published events failed; the relay may publish them again")

    async def _mark(self) -> None:
        ids, self._sent = self._sent, []
        if ids:
            await mark_published(ids)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._send_pending()

    async def _send_pending(self) -> None:
        batches, self._pending = self._pending, []
        events: list[BalanceEvent] = [e for b in batches for e in b.events]
        ids = [i for b in batches for i in b.outbox_ids]
        try:
            await asyncio.wait_for(self.broker.send(events), self.send_timeout)
            _observe(batches, len(events))
            self._sent.extend(ids)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("publishing %d events failed; the relay will publish them", len(events))

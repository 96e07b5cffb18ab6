"""Pending points mature: a scheduled job moves each due pending lot to the member's available points.

An earn inside a brand's return window credits the member's ``pending`` account with a lot that
matures at the purchase time plus ``Brand.pending_days`` (``hub/resolvers/earning.py``). Every five
minutes the ``mature-pending`` schedule enqueues an ``earning.mature`` job that moves the lots due by
its period's start, one ledger command per lot: a ``draw`` of exactly that lot from ``pending`` and a
``mirror`` credit to ``member`` (the available lot keeps the pending lot's expiry date).

Exactly once per lot: the command's idempotency key is ``maturity/lot:<id>``, the same in every job
and every run, and a matured lot has nothing left, so it is never due again. A refund that cancels a
pending lot first (``clawback_legs``) races the job under the account's lock: one of the two draws
the lot, the other finds it no longer covers and fails alone with ALREADY_USED (a refund then reads
its legs again; the job leaves the lot to the next run, if anything is left of it).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections

from hub.db import sql
from hub.errors import DomainError, ErrorCode
from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Leg
from hub.ledger.engine import LedgerWriter, Result
from hub.ledger.idempotency import IdempotencyClaim, request_hash
from hub.models import TransactionKind
from hub.worker.handlers import Chunk, ItemFailure, JobContext, JSONCursor, Plan
from hub.worker.schedules import Schedule

log = logging.getLogger(__name__)
KIND = "earning.mature"
SCHEDULE = Schedule("mature-pending", KIND, timedelta(minutes=5))
MATURITY_SCOPE = "maturity"

_DUE = (
    " FROM lot l JOIN account a ON a.id = l.account_id"
    " WHERE l.remaining > 0 AND l.matures_at IS NOT NULL AND l.matures_at <= ? AND a.kind = 'pending'"
)


def _stamp(conn: Any, moment: datetime) -> Any:
    return moment if conn.capabilities.dialect == "postgres" else moment.astimezone(UTC).isoformat(" ")


async def count_due(until: datetime) -> int:
    conn = connections.get("default")
    _, rows = await conn.execute_query(sql(conn, "SELECT COUNT(*) AS n" + _DUE), [_stamp(conn, until)])
    return int(rows[0]["n"])


async def due_lots(until: datetime, after_id: int, limit: int) -> list[dict[str, Any]]:
    """Open pending lots due by ``until``, after ``after_id``, in id order (the partial index
    ``lot_maturing_idx`` holds only open lots with a maturity)."""
    conn = connections.get("default")
    _, rows = await conn.execute_query(
        sql(
            conn,
            "SELECT l.id, l.remaining, a.brand_id, a.membership_id"
            + _DUE
            + f" AND l.id > ? ORDER BY l.id LIMIT {int(limit)}",
        ),
        [_stamp(conn, until), after_id],
    )
    return [dict(row) for row in rows]


def maturity_command(lot_id: int, brand_id: int, membership_id: int, amount: int) -> Command:
    return Command(
        kind=TransactionKind.MATURE,
        brand_id=brand_id,
        legs=(
            Leg(AccountRef.pending(brand_id, membership_id), -amount, draw=(lot_id,)),
            Leg(AccountRef.member(brand_id, membership_id), amount, mirror=0),
        ),
        claim=IdempotencyClaim(
            MATURITY_SCOPE, f"lot:{lot_id}", request_hash("mature", lot=lot_id, amount=amount)
        ),
        membership_id=membership_id,
        reason="Pending points matured",
        details={"lotId": lot_id, "points": amount},
    )


async def mature_lots(ledger: LedgerWriter, lots: list[dict[str, Any]]) -> list[Result]:
    commands = [
        maturity_command(r["id"], r["brand_id"], r["membership_id"], int(r["remaining"])) for r in lots
    ]
    return await ledger.submit_many(commands)


async def mature_due(ledger: LedgerWriter, until: datetime, chunk: int = 500) -> int:
    """Mature every lot due by ``until`` now (tests and tools; the job does the same in chunks)."""
    after, matured = 0, 0
    while lots := await due_lots(until, after, chunk):
        results = await mature_lots(ledger, lots)
        matured += sum(1 for r in results if not isinstance(r, BaseException))
        after = lots[-1]["id"]
    return matured


def job_time(params: dict[str, Any]) -> datetime:
    """The job's "now": ``until`` when given (tools, tests), else its schedule period's start."""
    raw = params.get("until") or params.get("periodStart")
    return datetime.fromisoformat(raw) if raw else datetime.now(UTC)


class MaturePending:
    kind = KIND

    def __init__(self, chunk_size: int = 500) -> None:
        self.chunk_size = chunk_size

    async def plan(self, ctx: JobContext) -> Plan:
        until = job_time(ctx.params)
        return Plan(total=await count_due(until), cursor={"after": 0, "until": until.isoformat()})

    async def run_chunk(self, ctx: JobContext, cursor: JSONCursor) -> Chunk:
        lots = await due_lots(datetime.fromisoformat(cursor["until"]), int(cursor["after"]), self.chunk_size)
        if not lots:
            return Chunk(None, 0)
        ctx.ensure_lease()
        assert ctx.ledger is not None
        done, failed = 0, []
        for lot, result in zip(lots, await mature_lots(ctx.ledger, lots), strict=True):
            if isinstance(result, DomainError) and result.code is ErrorCode.ALREADY_USED:
                # A refund drew from the lot since it was read: what is left matures in the next run.
                log.info("pending lot %s changed while maturing; left for the next run", lot["id"])
                done += 1
            elif isinstance(result, DomainError):
                failed.append(ItemFailure.of(f"lot:{lot['id']}", result))
            elif isinstance(result, BaseException):
                raise result
            else:
                done += 1
        following = {**cursor, "after": lots[-1]["id"]}
        return Chunk(following if len(lots) == self.chunk_size else None, done, failed)

"""Re-dating open points: HQ applies the policy in force now to points already held (recorded).

A policy change dates points earned from then on only. ``redateOpenPoints`` is HQ's explicit action
to date the points members already hold by the policy in force now: a ``lifecycle.redate`` job (the
job row records who asked, when and why) walks the brand's member points accounts that hold open lots,
and for each account whose lots get another date writes one ``redate`` ledger transaction: a debit
that draws exactly those lots (``Leg.draw``, their remainders) and one credit per new date, each a new
lot with that date. The balance does not change, the history shows the transaction with its reason,
and the details list every lot's old and new date.

A lot's new date is the policy's date for its creation time (``lot.created_at``: the earn, or the
maturity or transfer that created it). A lot whose new date has passed is expired by the next expiry
run. Exactly once per account and job: the claim ``job:<job>:a<account>``; a redemption that drew from
the lots meanwhile makes the exact draw fail (ALREADY_USED) and the account is read again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise import connections

from hub import policy
from hub.auth import Principal
from hub.db import sql
from hub.domain import TransactionKind
from hub.errors import DomainError, ErrorCode
from hub.events.broker import LocalBroker
from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Leg, LotTerms
from hub.ledger.idempotency import IdempotencyClaim, claim, request_hash
from hub.ledger.sql import as_datetime
from hub.models import Brand, Job
from hub.resolvers import access
from hub.resolvers import validation as v
from hub.resolvers.expiry_dates import ExpiryTerms, expiry_for
from hub.resolvers.expiry_policy import terms_in_force
from hub.worker import store
from hub.worker.events import publish_progress
from hub.worker.handlers import Chunk, ItemFailure, JobContext, JSONCursor, Plan

log = logging.getLogger(__name__)
KIND = "lifecycle.redate"
ATTEMPTS = 5
CHUNK_LOTS = 2_000

_OPEN = (
    " FROM lot l JOIN account a ON a.id = l.account_id"
    " WHERE a.brand_id = ? AND a.kind = 'member' AND a.asset = 'points' AND l.remaining > 0"
)


async def start_redate(
    principal: Principal | None, broker: LocalBroker | None, brand_id: int, reason: str, idempotency_key: str
) -> tuple[Job, bool]:
    """HQ: a job that dates the brand's open points by the policy in force when it runs."""
    p = policy.require(principal, policy.REDATE_POINTS)
    brand = await access.get_brand(p, policy.REDATE_POINTS, brand_id)
    key = v.idempotency_key(idempotency_key)
    reason = v.text(reason, "reason", max_length=200)
    params = {"reason": reason}
    job, created = await store.enqueue(
        KIND,
        brand_id=brand.id,
        name="Re-date open points",
        params=params,
        claim=claim(p.idempotency_scope, key, "redateOpenPoints", brand=brand.id, **params),
        created_by_key_id=p.key_id,
    )
    if created and broker is not None:
        await publish_progress(broker, job)
    return job, created


@dataclass(frozen=True, slots=True)
class OpenLot:
    id: int
    remaining: int
    expires_at: datetime | None
    created_at: datetime


_COLUMNS = "SELECT l.id, l.remaining, l.expires_at, l.created_at, l.account_id, a.membership_id"


def _grouped(rows: list[Any]) -> dict[int, tuple[int, list[OpenLot]]]:
    accounts: dict[int, tuple[int, list[OpenLot]]] = {}
    for r in rows:
        entry = accounts.setdefault(int(r["account_id"]), (int(r["membership_id"]), []))
        entry[1].append(
            OpenLot(
                int(r["id"]),
                int(r["remaining"]),
                as_datetime(r["expires_at"]),
                as_datetime(r["created_at"]),  # type: ignore[arg-type]
            )
        )
    return accounts


async def _account_lots(brand_id: int, account_id: int) -> dict[int, tuple[int, list[OpenLot]]]:
    conn = connections.get("default")
    _, rows = await conn.execute_query(
        sql(conn, _COLUMNS + _OPEN + " AND l.account_id = ? ORDER BY l.id"), [brand_id, account_id]
    )
    return _grouped(list(rows))


async def _open_lots(brand_id: int, after_account: int, limit: int) -> dict[int, tuple[int, list[OpenLot]]]:
    """account id -> (membership id, its open points lots), for accounts after ``after_account``;
    about ``limit`` lots, whole accounts only (one account larger than a page is read whole)."""
    conn = connections.get("default")
    _, found = await conn.execute_query(
        sql(
            conn,
            _COLUMNS + _OPEN + f" AND l.account_id > ? ORDER BY l.account_id, l.id LIMIT {int(limit) + 1}",
        ),
        [brand_id, after_account],
    )
    rows = list(found)
    if len(rows) <= limit:
        return _grouped(rows)
    cut = rows[limit]["account_id"]
    whole = [r for r in rows[:limit] if r["account_id"] != cut]
    return _grouped(whole) if whole else await _account_lots(brand_id, cut)


def redate_command(
    brand: Brand,
    membership_id: int,
    lots: list[OpenLot],
    terms: ExpiryTerms,
    item: IdempotencyClaim,
    reason: str,
) -> Command | None:
    """The account's lots whose date changes, moved to new lots with their new dates; None: none."""
    changes = [(lot, expiry_for(terms, lot.created_at, brand.timezone)) for lot in lots]
    changes = [(lot, new) for lot, new in changes if new != lot.expires_at]
    if not changes:
        return None
    member = AccountRef.member(brand.id, membership_id)
    by_date: dict[datetime | None, int] = defaultdict(int)
    for lot, new in changes:
        by_date[new] += lot.remaining
    total = sum(lot.remaining for lot, _ in changes)
    credits = tuple(
        Leg(member, amount, lot=LotTerms(expires_at=new) if new else None)
        for new, amount in sorted(
            by_date.items(), key=lambda x: (x[0] is None, x[0] or datetime.min.replace(tzinfo=UTC))
        )
    )
    listed = [
        {
            "lotId": lot.id,
            "points": lot.remaining,
            "from": lot.expires_at.isoformat() if lot.expires_at else None,
            "to": new.isoformat() if new else None,
        }
        for lot, new in changes
    ]
    fingerprint = ",".join(f"{x['lotId']}:{x['points']}:{x['to']}" for x in listed)
    return Command(
        kind=TransactionKind.REDATE,
        brand_id=brand.id,
        legs=(Leg(member, -total, draw=tuple(lot.id for lot, _ in changes)), *credits),
        claim=IdempotencyClaim(item.scope, item.key, request_hash("redate", lots=fingerprint)),
        membership_id=membership_id,
        reason=reason,
        details={"points": total, "lots": listed},
    )


class RedateOpenPoints:
    """The ``lifecycle.redate`` job: items are the brand's member points accounts with open lots."""

    kind = KIND

    def __init__(self, chunk_lots: int = CHUNK_LOTS) -> None:
        self.chunk_lots = chunk_lots

    async def plan(self, ctx: JobContext) -> Plan:
        conn = connections.get("default")
        _, rows = await conn.execute_query(
            sql(conn, "SELECT COUNT(DISTINCT l.account_id) AS n" + _OPEN), [ctx.brand_id]
        )
        return Plan(total=int(rows[0]["n"]), cursor={"after": 0})

    async def run_chunk(self, ctx: JobContext, cursor: JSONCursor) -> Chunk:
        assert ctx.brand_id is not None and ctx.ledger is not None
        accounts = await _open_lots(ctx.brand_id, int(cursor["after"]), self.chunk_lots)
        if not accounts:
            return Chunk(None, 0)
        ctx.ensure_lease()
        brand = await Brand.get(id=ctx.brand_id)
        terms = await terms_in_force(brand, datetime.now(UTC))
        reason = str(ctx.params.get("reason", ""))
        done, failed = 0, []
        todo = dict(accounts)
        for _ in range(ATTEMPTS):
            commands: list[tuple[int, Command]] = []
            for account_id, (membership_id, lots) in todo.items():
                item = ctx.item_claim(f"a{account_id}", "")
                command = redate_command(brand, membership_id, lots, terms, item, reason)
                if command is None:
                    done += 1  # nothing to change
                else:
                    commands.append((account_id, command))
            results = await ctx.ledger.submit_many([c for _, c in commands])
            again: list[int] = []
            for (account_id, _), result in zip(commands, results, strict=True):
                if isinstance(result, DomainError) and result.code is ErrorCode.ALREADY_USED:
                    again.append(account_id)
                elif isinstance(result, DomainError):
                    failed.append(ItemFailure.of(f"account:{account_id}", result))
                elif isinstance(result, BaseException):
                    raise result
                else:
                    done += 1
            if not again:
                break
            todo = {}
            for account_id in again:  # a redemption drew from the lots meanwhile: read them again
                fresh = await _account_lots(ctx.brand_id, account_id)
                if account_id in fresh:
                    todo[account_id] = fresh[account_id]
                else:
                    done += 1
        else:
            failed += [
                ItemFailure(f"account:{a}", ErrorCode.ALREADY_USED.value, "Kept changing; run again.")
                for a in todo
            ]
        return Chunk({"after": max(accounts)}, done, failed)

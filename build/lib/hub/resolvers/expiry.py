"""Expiry: the worker takes the remaining amount of every lot that is due, once, as ledger transactions.

Every ten minutes the ``expire-lots`` schedule enqueues a ``lifecycle.expire`` job that expires what is
due by its period's start; ``hub expire --until TIME`` does the same by hand (``--dry-run`` only
reports). The job walks the accounts that hold due lots in id order, a chunk at a time; for each it
writes one ``expire`` transaction (one per membership and asset per run) whose debit draws exactly the
due lots (``Leg.draw``, their remainders) and whose credit goes to the brand's burn account. The lots
are listed in the transaction's details.

- **Exactly once per lot.** An expired lot has nothing left, so it is never due again; a run that
  crashed mid-chunk runs the chunk again and finds the lots it expired gone (and the claim
  ``job:<id>:a<account>`` replays if the same lots are still listed).
- **Against concurrent redemptions.** A redemption and the expiry lock the member account in the ledger's
  one order; whichever comes second sees the other's effect. A redemption that came first drew from
  the lot, so the expiry's exact draw no longer covers and fails alone (ALREADY_USED): the account's due
  lots are read again and expired as they now are. An expiry that came first left nothing of those
  lots to spend. So the points are either spent or expired, never both and never neither.
- Points are spendable until the job has expired them (a few minutes after their date at most).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections

from hub.db import sql
from hub.domain import AccountKind, Asset, TransactionKind
from hub.errors import DomainError, ErrorCode
from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Leg
from hub.ledger.engine import LedgerWriter, Result
from hub.ledger.idempotency import IdempotencyClaim, request_hash
from hub.ledger.sql import as_datetime
from hub.worker.handlers import Chunk, ItemFailure, JobContext, JSONCursor, Plan
from hub.worker.schedules import Schedule

log = logging.getLogger(__name__)
KIND = "lifecycle.expire"
SCHEDULE = Schedule("expire-lots", KIND, timedelta(minutes=10))
EXPIRY_SCOPE = "expiry"
ATTEMPTS = 5  # reads of one account's due lots in a run when redemptions keep racing it

_DUE = (
    " FROM lot l JOIN account a ON a.id = l.account_id"
    " WHERE l.remaining > 0 AND l.expires_at IS NOT NULL AND l.expires_at <= ?"
    f" AND a.kind = '{AccountKind.MEMBER.value}'"
)


def _stamp(conn: Any, moment: datetime) -> Any:
    return moment if conn.capabilities.dialect == "postgres" else moment.astimezone(UTC).isoformat(" ")


def _scope(brand_id: int | None) -> tuple[str, list[Any]]:
    return (" AND a.brand_id = ?", [brand_id]) if brand_id is not None else ("", [])


@dataclass(frozen=True, slots=True)
class DueLot:
    id: int
    remaining: int
    expires_at: datetime


@dataclass(slots=True)
class DueAccount:
    """One member account's lots due by the run's time, soonest first."""

    account_id: int
    brand_id: int
    membership_id: int
    asset: Asset
    asset_code: str
    lots: list[DueLot] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(lot.remaining for lot in self.lots)


_COLUMNS = (
    "SELECT l.id, l.remaining, l.expires_at, l.account_id, a.brand_id, a.membership_id, a.asset, a.asset_code"
)


def _group(rows: list[Any]) -> list[DueAccount]:
    accounts: dict[int, DueAccount] = {}
    for r in rows:
        account = accounts.get(r["account_id"])
        if account is None:
            account = accounts[r["account_id"]] = DueAccount(
                int(r["account_id"]),
                int(r["brand_id"]),
                int(r["membership_id"]),
                Asset(r["asset"]),
                r["asset_code"],
            )
        account.lots.append(DueLot(int(r["id"]), int(r["remaining"]), as_datetime(r["expires_at"])))  # type: ignore[arg-type]
    return list(accounts.values())


async def due_accounts(
    until: datetime, after_account: int, limit: int, brand_id: int | None = None
) -> list[DueAccount]:
    """Accounts after ``after_account`` (in id order) with lots due by ``until``, each with all of its
    due lots; about ``limit`` lots in all. One indexed range read (``lot_expiring_idx``)."""
    conn = connections.get("default")
    scope, args = _scope(brand_id)
    _, found = await conn.execute_query(
        sql(
            conn,
            _COLUMNS
            + _DUE
            + scope
            + f" AND l.account_id > ? ORDER BY l.account_id, l.expires_at, l.id LIMIT {int(limit) + 1}",
        ),
        [_stamp(conn, until), *args, after_account],
    )
    rows = list(found)
    if len(rows) <= limit:
        return _group(rows)
    # One row more than a page: the account of that row may have more due lots than the page holds.
    cut = rows[limit]["account_id"]
    whole = [r for r in rows[:limit] if r["account_id"] != cut]
    # Left to the next chunk when others came before it; read whole when it is the only one.
    return _group(whole) if whole else await _one_account(cut, until)


async def _one_account(account_id: int, until: datetime) -> list[DueAccount]:
    conn = connections.get("default")
    _, rows = await conn.execute_query(
        sql(conn, _COLUMNS + _DUE + " AND l.account_id = ? ORDER BY l.expires_at, l.id"),
        [_stamp(conn, until), account_id],
    )
    return _group(list(rows))


async def count_due(until: datetime, brand_id: int | None = None) -> int:
    """Accounts holding lots due by ``until`` (a job's items)."""
    conn = connections.get("default")
    scope, args = _scope(brand_id)
    _, rows = await conn.execute_query(
        sql(conn, "SELECT COUNT(DISTINCT l.account_id) AS n" + _DUE + scope), [_stamp(conn, until), *args]
    )
    return int(rows[0]["n"])


@dataclass(frozen=True, slots=True)
class DueSummary:
    brand_id: int
    asset: str
    asset_code: str
    lots: int
    accounts: int
    amount: int


async def summary(until: datetime, brand_id: int | None = None) -> list[DueSummary]:
    """What a run until ``until`` would expire, per brand and asset (the dry run)."""
    conn = connections.get("default")
    scope, args = _scope(brand_id)
    _, rows = await conn.execute_query(
        sql(
            conn,
            "SELECT a.brand_id, a.asset, a.asset_code, COUNT(*) AS lots,"
            " COUNT(DISTINCT l.account_id) AS accounts, SUM(l.remaining) AS amount"
            + _DUE
            + scope
            + " GROUP BY a.brand_id, a.asset, a.asset_code ORDER BY a.brand_id, a.asset, a.asset_code",
        ),
        [_stamp(conn, until), *args],
    )
    return [
        DueSummary(
            int(r["brand_id"]),
            r["asset"],
            r["asset_code"],
            int(r["lots"]),
            int(r["accounts"]),
            int(r["amount"]),
        )
        for r in rows
    ]


def expiry_command(account: DueAccount, claim_key: tuple[str, str], until: datetime) -> Command:
    """One account's due lots, drawn exactly, to the brand's burn account of the asset."""
    # The lots as one string: hashing a nested list per command cost more than planning it.
    lots = ",".join(f"{lot.id}:{lot.remaining}" for lot in account.lots)
    total = account.total
    member = AccountRef.member(account.brand_id, account.membership_id, account.asset, account.asset_code)
    burn = AccountRef.burn(account.brand_id, account.asset, account.asset_code)
    scope, key = claim_key
    return Command(
        kind=TransactionKind.EXPIRE,
        brand_id=account.brand_id,
        legs=(Leg(member, -total, draw=tuple(lot.id for lot in account.lots)), Leg(burn, total)),
        claim=IdempotencyClaim(scope, key, request_hash("expire", account=account.account_id, lots=lots)),
        membership_id=account.membership_id,
        reason="Points expired" if account.asset is Asset.POINTS else "Expired",
        details={
            "expiredUntil": until.isoformat(),
            "amount": total,
            "lots": [
                {"lotId": lot.id, "amount": lot.remaining, "expiresAt": lot.expires_at.isoformat()}
                for lot in account.lots
            ],
        },
    )


@dataclass
class RunResult:
    accounts: int = 0  # accounts whose due lots were expired (or replayed) in this run
    lots: int = 0
    amount: int = 0
    left: int = 0  # accounts left to the next run (redemptions kept racing them)
    failed: list[tuple[int, DomainError]] = field(default_factory=list)


async def expire_accounts(
    ledger: LedgerWriter,
    accounts: list[DueAccount],
    until: datetime,
    claim_key: Callable[[int], tuple[str, str]],
    submit: Callable[[list[Command]], Awaitable[list[Result]]] | None = None,
) -> RunResult:
    """Expire these accounts' due lots: one command each, submitted together; accounts a redemption
    drew from meanwhile are read again and retried. ``claim_key(account_id) -> (scope, key)``."""
    submit = submit or ledger.submit_many
    result = RunResult()
    todo = accounts
    for attempt in range(1, ATTEMPTS + 1):
        outcomes: list[Result] = await submit(
            [expiry_command(a, claim_key(a.account_id), until) for a in todo]
        )
        again: list[int] = []
        for account, outcome in zip(todo, outcomes, strict=True):
            if isinstance(outcome, DomainError) and outcome.code is ErrorCode.ALREADY_USED:
                again.append(account.account_id)
            elif isinstance(outcome, DomainError) and outcome.code is ErrorCode.IDEMPOTENCY_CONFLICT:
                # This run's claim for the account was used with other lots (a crashed run, then a lot
                # that became due since through a transfer): those wait for the next run.
                result.left += 1
            elif isinstance(outcome, DomainError):
                result.failed.append((account.account_id, outcome))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                result.accounts += 1
                result.lots += len(account.lots)
                result.amount += account.total
        if not again:
            return result
        log.info(
            "%d accounts were drawn from while expiring (attempt %d); reading them again", len(again), attempt
        )
        todo = [fresh for account_id in again for fresh in await _one_account(account_id, until)]
        if not todo:  # spent entirely meanwhile: nothing left to expire
            return result
    result.left += len(todo)
    return result


async def expire_due(
    ledger: LedgerWriter, until: datetime, *, brand_id: int | None = None, chunk: int = 10_000
) -> RunResult:
    """Expire everything due by ``until`` now (``hub expire``, tests). Claims ``expiry:<until>:a<id>``:
    a run interrupted and started again with the same ``until`` goes on where the first stopped."""
    stamp = until.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    total = RunResult()
    after = 0
    while accounts := await due_accounts(until, after, chunk, brand_id):
        done = await expire_accounts(ledger, accounts, until, lambda a: (EXPIRY_SCOPE, f"{stamp}:a{a}"))
        total.accounts += done.accounts
        total.lots += done.lots
        total.amount += done.amount
        total.left += done.left
        total.failed.extend(done.failed)
        after = accounts[-1].account_id
    return total


def job_time(params: dict[str, Any]) -> datetime:
    """The job's "now": ``until`` when given (tools, tests), else its schedule period's start."""
    raw = params.get("until") or params.get("periodStart")
    return datetime.fromisoformat(raw) if raw else datetime.now(UTC)


class ExpireLots:
    """The ``lifecycle.expire`` job: items are accounts holding due lots, in id order."""

    kind = KIND

    def __init__(self, chunk_size: int = 10_000) -> None:
        self.chunk_size = chunk_size  # lots per chunk (about)

    async def submit(self, ctx: JobContext, commands: list[Command]) -> list[Result]:
        assert ctx.ledger is not None
        return await ctx.ledger.submit_many(commands)

    async def plan(self, ctx: JobContext) -> Plan:
        until = job_time(ctx.params)
        brand = ctx.params.get("brandId")
        return Plan(total=await count_due(until, brand), cursor={"after": 0, "until": until.isoformat()})

    async def run_chunk(self, ctx: JobContext, cursor: JSONCursor) -> Chunk:
        until = datetime.fromisoformat(cursor["until"])
        accounts = await due_accounts(until, int(cursor["after"]), self.chunk_size, ctx.params.get("brandId"))
        if not accounts:
            return Chunk(None, 0)
        ctx.ensure_lease()
        assert ctx.ledger is not None

        async def submit(commands: list[Command]) -> list[Result]:
            return await self.submit(ctx, commands)

        def key(account_id: int) -> tuple[str, str]:
            claim = ctx.item_claim(f"a{account_id}", "")
            return claim.scope, claim.key

        done = await expire_accounts(ctx.ledger, accounts, until, key, submit)
        failed = [ItemFailure.of(f"account:{a}", error) for a, error in done.failed]
        # Accounts left to the next run count as done here: the next run's own items include them.
        return Chunk({**cursor, "after": accounts[-1].account_id}, done.accounts + done.left, failed)

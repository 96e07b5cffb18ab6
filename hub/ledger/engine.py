"""Posting engine: every write of value goes through ``post_transaction``.

One call is one database transaction that

1. inserts the ``LedgerTransaction`` row first. Its unique (scope, key) makes a concurrent duplicate
   wait for the first and then fail, and on SQLite a write as the first statement takes the write lock
   at once (the effect of ``BEGIN IMMEDIATE``), so a second process waits instead of failing later;
2. locks every account it touches with ``SELECT ... FOR UPDATE`` in id order, a fixed order that rules
   out deadlocks between two transfers (SQLite ignores the clause; its single writer serialises);
3. checks double entry and balance limits, writes postings with per-account sequence numbers and
   running balances, moves lots, and writes one outbox row per member posting.

Anything raised rolls the whole transaction back: no posting, no lot change, no outbox row.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from hub.db import sql, with_retries
from hub.errors import DomainError, ErrorCode
from hub.events.relay import wake_relay
from hub.ledger.lots import draw_from_lots
from hub.models import (
    Account,
    AccountKind,
    Asset,
    LedgerTransaction,
    Lot,
    OutboxEvent,
    Posting,
    TransactionKind,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leg:
    account_key: str
    amount: int


@dataclass(frozen=True)
class IdempotencyClaim:
    scope: str
    key: str
    request_hash: str


@dataclass
class Posted:
    transaction: LedgerTransaction
    postings: list[Posting]
    replayed: bool = False
    accounts: dict[int, LockedAccount] = field(default_factory=dict)

    def posting_on(self, account_id: int) -> Posting | None:
        return next((p for p in self.postings if p.account_id == account_id), None)


class InsufficientBalance(DomainError):
    def __init__(self) -> None:
        super().__init__(ErrorCode.INSUFFICIENT_POINTS, "Not enough points.", "points")


def channel_for(account_id: int) -> str:
    return f"account:{account_id}"


def event_payload(
    posting: Posting, account: Account | LockedAccount, txn: LedgerTransaction
) -> dict[str, Any]:
    """The balance event for one posting; the outbox and the subscription replay share it."""
    return {
        "accountId": account.id,
        "membershipId": account.membership_id,
        "brandId": account.brand_id,
        "asset": str(account.asset),
        "sequence": posting.sequence,
        "balance": posting.balance_after,
        "delta": posting.amount,
        "transaction": {
            "id": txn.id,
            "kind": str(txn.kind),
            "storeId": txn.store_id,
            "createdAt": txn.created_at.isoformat(),
        },
    }


async def find_by_claim(claim: IdempotencyClaim) -> LedgerTransaction | None:
    return await LedgerTransaction.get_or_none(idempotency_scope=claim.scope, idempotency_key=claim.key)


async def _replay(existing: LedgerTransaction, claim: IdempotencyClaim) -> Posted:
    if existing.request_hash != claim.request_hash:
        raise DomainError(
            ErrorCode.IDEMPOTENCY_CONFLICT,
            "This idempotency key was already used with a different request.",
            "idempotencyKey",
        )
    postings = await Posting.filter(transaction_id=existing.id).order_by("id")
    return Posted(transaction=existing, postings=postings, replayed=True)


async def post_transaction(
    *,
    brand_id: int,
    kind: TransactionKind,
    legs: Sequence[Leg],
    claim: IdempotencyClaim,
    store_id: int | None = None,
    membership_id: int | None = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
    reverses_id: int | None = None,
    lot_expires_at: datetime | None = None,
    lot_matures_at: datetime | None = None,
) -> Posted:
    """Post one transaction exactly once per idempotency claim."""
    for leg in legs:
        if leg.amount == 0:
            raise DomainError(ErrorCode.INVALID_INPUT, "A posting amount cannot be zero.")
    # No look-up first: the insert of the claim is the check. A retry of a committed request fails on
    # the unique key at once and is answered from what was stored, so the common path saves a query.

    async def attempt() -> Posted:
        async with in_transaction() as conn:
            txn = await LedgerTransaction.create(
                brand_id=brand_id,
                kind=kind,
                store_id=store_id,
                membership_id=membership_id,
                reason=reason,
                idempotency_scope=claim.scope,
                idempotency_key=claim.key,
                request_hash=claim.request_hash,
                reverses_id=reverses_id,
                details=details or {},
                using_db=conn,
            )
            posted = await _write_postings(conn, txn, legs, lot_expires_at, lot_matures_at)
        return posted

    try:
        posted = await with_retries(attempt)
    except IntegrityError:
        existing = await find_by_claim(claim)
        if existing is None:
            if reverses_id is not None:
                raise DomainError(
                    ErrorCode.ALREADY_REVERSED, "This transaction was already reversed."
                ) from None
            raise
        return await _replay(existing, claim)
    if any(a.kind is AccountKind.MEMBER for a in posted.accounts.values()):
        wake_relay()
    return posted


async def _write_postings(
    conn: BaseDBAsyncClient,
    txn: LedgerTransaction,
    legs: Sequence[Leg],
    lot_expires_at: datetime | None,
    lot_matures_at: datetime | None,
) -> Posted:
    keys = sorted({leg.account_key for leg in legs})
    locked = await _lock_accounts(conn, keys) if keys else []
    by_key = {a.key: a for a in locked}
    missing = set(keys) - by_key.keys()
    if missing:
        raise RuntimeError(f"unknown ledger accounts: {sorted(missing)}")

    per_asset: dict[tuple[str, str], int] = defaultdict(int)
    for leg in legs:
        acct = by_key[leg.account_key]
        per_asset[(acct.asset, acct.asset_code)] += leg.amount
    if any(total != 0 for total in per_asset.values()):
        raise RuntimeError(f"unbalanced transaction: {dict(per_asset)}")

    postings: list[Posting] = []
    for leg in legs:
        acct = by_key[leg.account_key]
        acct.balance += leg.amount
        acct.sequence += 1
        if acct.balance < 0 and not acct.allow_negative:
            raise InsufficientBalance()
        postings.append(
            Posting(
                transaction_id=txn.id,
                account_id=acct.id,
                amount=leg.amount,
                sequence=acct.sequence,
                balance_after=acct.balance,
                created_at=txn.created_at,
            )
        )
    if postings:
        await Posting.bulk_create(postings, using_db=conn)
    for acct in locked:
        await conn.execute_query(
            sql(conn, "UPDATE account SET balance = ?, sequence = ? WHERE id = ?"),
            [acct.balance, acct.sequence, acct.id],
        )

    by_id = {a.id: a for a in locked}
    await _move_lots(conn, txn, postings, by_id, lot_expires_at, lot_matures_at)
    await _write_outbox(conn, txn, postings, by_id)
    return Posted(transaction=txn, postings=postings, accounts=by_id)


@dataclass
class LockedAccount:
    """An account row read under its lock; the engine changes ``balance`` and ``sequence``."""

    id: int
    key: str
    brand_id: int
    membership_id: int | None
    asset: Asset
    asset_code: str
    kind: AccountKind
    allow_negative: bool
    balance: int
    sequence: int


async def _lock_accounts(conn: BaseDBAsyncClient, keys: list[str]) -> list[LockedAccount]:
    """Lock the rows in id order, the one order every transaction uses, so none waits in a cycle.

    Hand-written SQL: this is the hottest query of the hub, and building it through the ORM cost more
    CPU than running it (bench/README.md).
    """
    for_update = " FOR UPDATE" if conn.capabilities.dialect == "postgres" else ""
    marks = ", ".join("?" * len(keys))
    query = (
        "SELECT id, key, brand_id, membership_id, asset, asset_code, kind, allow_negative, balance,"
        f" sequence FROM account WHERE key IN ({marks}) ORDER BY id{for_update}"
    )
    _, rows = await conn.execute_query(sql(conn, query), keys)
    return [
        LockedAccount(
            id=r["id"],
            key=r["key"],
            brand_id=r["brand_id"],
            membership_id=r["membership_id"],
            asset=Asset(r["asset"]),
            asset_code=r["asset_code"],
            kind=AccountKind(r["kind"]),
            allow_negative=bool(r["allow_negative"]),
            balance=r["balance"],
            sequence=r["sequence"],
        )
        for r in rows
    ]


async def _move_lots(
    conn: BaseDBAsyncClient,
    txn: LedgerTransaction,
    postings: list[Posting],
    accounts: dict[int, LockedAccount],
    expires_at: datetime | None,
    matures_at: datetime | None,
) -> None:
    for posting in postings:
        if accounts[posting.account_id].kind is not AccountKind.MEMBER:
            continue
        if posting.amount > 0:
            await Lot.create(
                account_id=posting.account_id,
                transaction_id=txn.id,
                amount=posting.amount,
                remaining=posting.amount,
                expires_at=expires_at,
                matures_at=matures_at,
                using_db=conn,
            )
        else:
            await draw_from_lots(conn, txn.id, posting.account_id, -posting.amount)


async def _write_outbox(
    conn: BaseDBAsyncClient,
    txn: LedgerTransaction,
    postings: list[Posting],
    accounts: dict[int, LockedAccount],
) -> None:
    rows = [
        OutboxEvent(
            account_id=p.account_id,
            sequence=p.sequence,
            channel=channel_for(p.account_id),
            payload=event_payload(p, accounts[p.account_id], txn),
        )
        for p in postings
        if accounts[p.account_id].kind is AccountKind.MEMBER
    ]
    if rows:
        await OutboxEvent.bulk_create(rows, using_db=conn)

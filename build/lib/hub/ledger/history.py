"""Reading the ledger back: an account's balance events after a sequence number, and its balance."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise import connections

from hub.db import sql
from hub.ledger.events import BalanceEvent
from hub.ledger.sql import as_datetime

# Replay and gap filling read at most this many events per query (the stream reads on until done).
PAGE = 500


@dataclass(frozen=True, slots=True)
class AccountView:
    """What a stream needs of an account: who it belongs to, and how far its history goes."""

    id: int
    brand_id: int
    membership_id: int | None
    asset: str
    asset_code: str
    kind: str
    balance: int
    sequence: int


async def account_view(key: str) -> AccountView | None:
    conn = connections.get("default")
    _, rows = await conn.execute_query(
        sql(
            conn,
            "SELECT id, brand_id, membership_id, asset, asset_code, kind, balance, sequence"
            " FROM account WHERE key = ?",
        ),
        [key],
    )
    return AccountView(**dict(rows[0])) if rows else None


async def sequences(account_ids: list[int]) -> dict[int, int]:
    """The current sequence of each account."""
    conn = connections.get("default")
    marks = ", ".join("?" * len(account_ids))
    _, rows = await conn.execute_query(
        sql(conn, f"SELECT id, sequence FROM account WHERE id IN ({marks})"), list(account_ids)
    )
    return {row["id"]: row["sequence"] for row in rows}


async def events_after(account: AccountView, after: int, up_to: int | None = None) -> list[BalanceEvent]:
    """The account's events with a sequence above ``after`` (and at most ``up_to``), in order."""
    conn = connections.get("default")
    out: list[BalanceEvent] = []
    while True:
        limit = PAGE if up_to is None else min(PAGE, up_to - after)
        if limit <= 0:
            return out
        _, rows = await conn.execute_query(
            sql(
                conn,
                "SELECT p.sequence, p.amount, p.balance_after, t.id, t.kind, t.store_id, t.created_at"
                " FROM posting p JOIN ledger_transaction t ON t.id = p.transaction_id"
                f" WHERE p.account_id = ? AND p.sequence > ? ORDER BY p.sequence LIMIT {int(limit)}",
            ),
            [account.id, after],
        )
        for row in rows:
            out.append(
                BalanceEvent(
                    account_id=account.id,
                    membership_id=account.membership_id,
                    brand_id=account.brand_id,
                    asset=account.asset,
                    asset_code=account.asset_code,
                    kind=account.kind,
                    sequence=row["sequence"],
                    balance=row["balance_after"],
                    delta=row["amount"],
                    transaction_id=row["id"],
                    transaction_kind=row["kind"],
                    store_id=row["store_id"],
                    created_at=as_datetime(row["created_at"]),  # type: ignore[arg-type]
                )
            )
        if len(rows) < limit:
            return out
        after = out[-1].sequence

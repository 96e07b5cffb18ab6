"""Reading and recording checkpoints: what clean audits proved (``hub.models.audit``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from tortoise.transactions import in_transaction

from hub.db import sql
from hub.ledger.audit.scope import Scope
from hub.ledger.audit.session import Horizons, Session
from hub.models import AuditCheckpoint, AuditMode

_COLUMNS = (
    "id, mode, extends_id, posting_horizon, transaction_horizon, lot_horizon, allocation_horizon,"
    " outbox_horizon, accounts, transactions, postings, segment_hash, chain_hash, created_at"
)


@dataclass(frozen=True)
class CheckpointRow:
    id: int
    mode: str
    extends_id: int | None
    posting_horizon: int
    transaction_horizon: int
    lot_horizon: int
    allocation_horizon: int
    outbox_horizon: int
    accounts: int
    transactions: int
    postings: int
    segment_hash: str
    chain_hash: str
    created_at: datetime

    @property
    def horizons(self) -> Horizons:
        return Horizons(
            self.posting_horizon,
            self.transaction_horizon,
            self.lot_horizon,
            self.allocation_horizon,
            self.outbox_horizon,
        )


async def load_chain(session: Session, scope: Scope) -> list[CheckpointRow]:
    """The scope's latest full checkpoint and the incremental ones recorded on top of it, oldest first.

    Read in the audit's snapshot. Recording keeps them one line (see ``record``): each extends the one
    before it.
    """
    name = scope.name
    rows = await session.rows(
        f"SELECT {_COLUMNS} FROM audit_checkpoint WHERE scope = '{name}' AND id >= (SELECT MAX(id) FROM"
        f" audit_checkpoint WHERE scope = '{name}' AND mode = 'full') ORDER BY id"
    )
    chain = [_row(r) for r in rows]
    for previous, checkpoint in pairwise(chain):
        if checkpoint.extends_id != previous.id:
            raise RuntimeError(f"audit checkpoint {checkpoint.id} does not extend {previous.id}")
    return chain


def _row(r: Sequence[Any]) -> CheckpointRow:
    created_at = r[13] if isinstance(r[13], datetime) else datetime.fromisoformat(str(r[13]))
    extends_id = None if r[2] is None else int(r[2])
    p, t, lot, allocation, outbox, accounts, transactions, postings = (int(v) for v in r[3:11])
    return CheckpointRow(
        int(r[0]),
        str(r[1]),
        extends_id,
        p,
        t,
        lot,
        allocation,
        outbox,
        accounts,
        transactions,
        postings,
        str(r[11]),
        str(r[12]),
        created_at,
    )


async def load_state(session: Session, scope: Scope) -> dict[int, tuple[int, int]]:
    """Balance and sequence of each account as the scope's latest checkpoint proved them."""
    rows = await session.rows(
        f"SELECT account_id, balance, sequence FROM audit_account_state WHERE scope = '{scope.name}'"
    )
    return {int(r[0]): (int(r[1]), int(r[2])) for r in rows}


@dataclass(frozen=True)
class Proven:
    """What a clean run proved, to be recorded."""

    mode: AuditMode
    extends: CheckpointRow | None  # the checkpoint an incremental run built on
    horizons: Horizons
    accounts: int
    transactions: int
    postings: int
    segment_hash: str
    chain_hash: str
    started_at: datetime
    # (account id, balance, sequence): every account with postings (full) or those that changed.
    states: list[tuple[int, int, int]]


async def record(scope: Scope, proven: Proven) -> AuditCheckpoint | None:
    """Record ``proven`` as the scope's latest checkpoint; None when another run got there first.

    Writes are serialised per scope (an advisory lock on PostgreSQL, SQLite's single writer). An
    incremental run records only if the checkpoint it built on is still the latest: otherwise its
    account states would mix with another run's. A full run always records: it rewrites every state
    row of its scope and starts a new chain, which the next incremental run builds on.
    """
    async with in_transaction() as conn:
        postgres = conn.capabilities.dialect == "postgres"
        if postgres:
            await conn.execute_query(
                "SELECT pg_advisory_xact_lock(hashtext($1))", [f"hub:audit:{scope.name}"]
            )
        latest = await AuditCheckpoint.filter(scope=scope.name).using_db(conn).order_by("-id").first()
        if proven.mode is AuditMode.INCREMENTAL:
            if proven.extends is None or latest is None or latest.id != proven.extends.id:
                return None
        h = proven.horizons
        checkpoint = await AuditCheckpoint.create(
            scope=scope.name,
            brand_id=scope.brand_id,
            mode=proven.mode,
            extends_id=proven.extends.id if proven.extends else None,
            posting_horizon=h.posting,
            transaction_horizon=h.transaction,
            lot_horizon=h.lot,
            allocation_horizon=h.allocation,
            outbox_horizon=h.outbox,
            accounts=proven.accounts,
            transactions=proven.transactions,
            postings=proven.postings,
            segment_hash=proven.segment_hash,
            chain_hash=proven.chain_hash,
            started_at=proven.started_at,
            using_db=conn,
        )
        if proven.mode is AuditMode.FULL:
            await conn.execute_query(
                sql(conn, "DELETE FROM audit_account_state WHERE scope = ?"), [scope.name]
            )
        if not proven.states:
            return checkpoint
        upsert = (
            " ON CONFLICT (scope, account_id) DO UPDATE SET balance = excluded.balance,"
            " sequence = excluded.sequence, checkpoint_id = excluded.checkpoint_id"
        )
        columns = "INSERT INTO audit_account_state (scope, account_id, balance, sequence, checkpoint_id)"
        if postgres:
            # One statement however many accounts: the states travel as three arrays.
            ids, balances, sequences = (list(c) for c in zip(*proven.states, strict=True))
            await conn.execute_query(
                f"{columns} SELECT $1, u.a, u.b, u.s, $2 FROM unnest($3::bigint[], $4::bigint[],"
                f" $5::bigint[]) AS u(a, b, s){upsert}",
                [scope.name, checkpoint.id, ids, balances, sequences],
            )
        else:
            rows = [[scope.name, a, b, s, checkpoint.id] for a, b, s in proven.states]
            await conn.execute_many(f"{columns} VALUES (?, ?, ?, ?, ?){upsert}", rows)
        return checkpoint

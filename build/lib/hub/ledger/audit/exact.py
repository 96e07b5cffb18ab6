"""Exact queries both audit modes share: they name the rows that break an invariant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.ledger.audit.report import Violation
from hub.ledger.audit.scope import ANNOUNCED_ACCOUNTS_SQL, Scope
from hub.ledger.audit.session import Session

Book = tuple[int, str, str]  # (brand, asset, asset code): where double entry must hold


@dataclass(frozen=True)
class AccountRow:
    id: int
    brand_id: int
    asset: str
    asset_code: str
    kind: str
    allow_negative: bool
    balance: int
    sequence: int

    @property
    def book(self) -> Book:
        return (self.brand_id, self.asset, self.asset_code)


ACCOUNTS_SQL = (
    "SELECT a.id, a.brand_id, a.asset, a.asset_code, a.kind, a.allow_negative, a.balance, a.sequence"
    " FROM account a WHERE {scope}"
)


async def accounts_of(session: Session, scope: Scope) -> dict[int, AccountRow]:
    rows = await session.rows(ACCOUNTS_SQL.format(scope=scope.accounts()))
    return {
        int(r[0]): AccountRow(
            int(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4]), bool(r[5]), int(r[6]), int(r[7])
        )
        for r in rows
    }


@dataclass
class Outcome:
    violations: list[Violation] = field(default_factory=list)
    accounts: int = 0
    transactions: int = 0
    postings: int = 0
    # (account id, balance, sequence) of every account with postings: the balances this run proved.
    states: list[tuple[int, int, int]] = field(default_factory=list)


async def duplicate_keys(session: Session, scope: Scope, new_after: int | None = None) -> list[Violation]:
    """Idempotency keys used by more than one transaction (the unique index forbids it).

    A brand's audit reports the keys one of its transactions used. ``new_after`` limits the check to
    keys of transactions with a larger id (incremental runs).
    """
    mine = "1 = 1" if scope.brand_id is None else f"n.brand_id = {int(scope.brand_id)}"
    if new_after is None and scope.brand_id is None:
        keys = ""
    else:
        newer = "1 = 1" if new_after is None else f"n.id > {int(new_after)}"
        keys = (
            " WHERE (t.idempotency_scope, t.idempotency_key) IN (SELECT n.idempotency_scope,"
            f" n.idempotency_key FROM ledger_transaction n WHERE {mine} AND {newer})"
        )
    rows = await session.rows(
        "SELECT t.idempotency_scope, t.idempotency_key, COUNT(*) FROM ledger_transaction t"
        f"{keys} GROUP BY t.idempotency_scope, t.idempotency_key HAVING COUNT(*) > 1"
    )
    return [Violation("DUPLICATE_IDEMPOTENCY_KEY", f"key {r[0]}/{r[1]}", f"{r[2]} uses") for r in rows]


# The two sides of a partnership's settlement: what one brand owes under it, what the other is owed.
PARTY_KINDS = "('payable', 'receivable')"


def unmirrored_settlements(scope: Scope, s: str, transactions: str | None = None) -> str:
    """Transactions whose payable and receivable postings under one partnership do not cancel out.

    Each brand's side of a settlement already balances against its own clearing account; this checks
    that what one brand owes the other, the other is owed. A brand's audit checks the partnerships it
    is part of, reading the other brand's side too. ``transactions`` limits it to a subquery of ids.
    """
    mine = ""
    if scope.brand_id is not None:
        mine = (
            " AND a.partnership_id IN (SELECT partnership_id FROM account"
            f" WHERE brand_id = {int(scope.brand_id)} AND partnership_id IS NOT NULL)"
        )
    only = "" if transactions is None else f" AND p.transaction_id IN ({transactions})"
    return (
        f"SELECT p.transaction_id, a.partnership_id, a.asset, a.asset_code, {s}(p.amount) FROM posting p"
        f" JOIN account a ON a.id = p.account_id WHERE a.kind IN {PARTY_KINDS}"
        f" AND a.partnership_id IS NOT NULL{mine}{only}"
        " GROUP BY p.transaction_id, a.partnership_id, a.asset, a.asset_code"
        f" HAVING {s}(p.amount) <> 0"
    )


def settlement_shape(r: Sequence[Any]) -> tuple[str, str]:
    return (
        f"transaction {r[0]}",
        f"partnership {r[1]}: payable and receivable {book_name(r[2], r[3])} sum to {r[4]}",
    )


def book_name(asset: str, code: str) -> str:
    return f"{asset}/{code}" if code else asset


# Each posting next to the one before it on its account; ``{where}`` selects the postings.
HISTORY_SQL = (
    "SELECT x.id, x.account_id, x.sequence, x.amount, x.balance_after, x.previous_sequence,"
    " x.previous_balance FROM (SELECT p.id, p.account_id, p.sequence, p.amount, p.balance_after,"
    " LAG(p.sequence) OVER w AS previous_sequence, LAG(p.balance_after) OVER w AS previous_balance"
    " FROM posting p WHERE {where} WINDOW w AS (PARTITION BY p.account_id ORDER BY p.sequence, p.id)) x"
)


def history_shape(r: Sequence[Any]) -> tuple[str, str]:
    previous = f"sequence {r[5]}, balance {r[6]}" if r[5] is not None else "the account's start"
    return (
        f"posting {r[0]}",
        f"account {r[1]} sequence {r[2]}: {r[6] if r[6] is not None else 0} + {r[3]} should be"
        f" {r[4]}, after {previous}",
    )


# Each lot with what its allocations drew; ``{where}`` selects the lots.
LOTS_SQL = (
    "SELECT x.id, x.account_id, x.amount, x.remaining, x.allocated FROM (SELECT l.id, l.account_id,"
    " l.amount, l.remaining, COALESCE((SELECT {s}(la.amount) FROM lot_allocation la"
    " WHERE la.lot_id = l.id), 0) AS allocated FROM lot l WHERE {where}) x"
)


def lot_shape(r: Sequence[Any]) -> tuple[str, str]:
    return f"lot {r[0]}", f"account {r[1]}: amount {r[2]}, remaining {r[3]}, allocated {r[4]}"


MISSING_EVENTS_SQL = (
    "SELECT p.id, p.account_id, p.sequence FROM posting p JOIN account a ON a.id = p.account_id"
    f" WHERE {{where}} AND {ANNOUNCED_ACCOUNTS_SQL} AND NOT EXISTS (SELECT 1 FROM outbox_event o"
    " WHERE o.account_id = p.account_id AND o.sequence = p.sequence)"
)
ORPHAN_EVENTS_SQL = (
    "SELECT o.id, o.account_id, o.sequence FROM outbox_event o WHERE {where} AND NOT EXISTS ("
    "SELECT 1 FROM posting p WHERE p.account_id = o.account_id AND p.sequence = o.sequence)"
)


def missing_shape(r: Sequence[Any]) -> tuple[str, str]:
    return f"posting {r[0]}", f"account {r[1]} sequence {r[2]} has no outbox event"


def orphan_shape(r: Sequence[Any]) -> tuple[str, str]:
    return f"outbox event {r[0]}", f"account {r[1]} sequence {r[2]} has no posting"

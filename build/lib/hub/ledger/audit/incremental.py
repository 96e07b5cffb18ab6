"""The incremental audit: what came after a checkpoint, on top of what the checkpoint proved.

New rows are those with an id above the checkpoint's horizons (``session.py`` explains why nothing
can commit below a horizon later). Every check is exact and reads new rows, or the rows they touch,
through indexes, so its cost follows what is new, not the size of the ledger. The one whole-table
read is of ``account`` (and the proven states), to compare every stored balance with the proven one
plus the new postings.
"""

from __future__ import annotations

import asyncio
from dataclasses import astuple, dataclass

from hub.ledger.audit.checkpoints import CheckpointRow
from hub.ledger.audit.exact import (
    HISTORY_SQL,
    LOTS_SQL,
    MISSING_EVENTS_SQL,
    ORPHAN_EVENTS_SQL,
    AccountRow,
    Outcome,
    accounts_of,
    book_name,
    duplicate_keys,
    history_shape,
    lot_shape,
    missing_shape,
    orphan_shape,
    settlement_shape,
    unmirrored_settlements,
)
from hub.ledger.audit.report import Violation
from hub.ledger.audit.scope import LOT_ACCOUNTS_SQL, Scope, id_list, keeps_lots
from hub.ledger.audit.session import Horizons, Session


@dataclass(frozen=True)
class _Since:
    """The rows after the checkpoint, as SQL conditions."""

    session: Session
    scope: Scope
    head: CheckpointRow
    now: Horizons

    def new(self, column: str, table: str) -> str:
        lo, hi = getattr(self.head.horizons, table), getattr(self.now, table)
        return f"{column} > {int(lo)} AND {column} <= {int(hi)}"

    @property
    def postings(self) -> str:
        return f"{self.new('p.id', 'posting')} AND {self.scope.account_ids('p.account_id')}"


async def run(
    sessions: tuple[Session, Session],
    scope: Scope,
    head: CheckpointRow,
    state: dict[int, tuple[int, int]],
    now: Horizons,
) -> Outcome:
    """The checks, split over two connections to the same snapshot (one on SQLite)."""
    one, two = (_Since(session, scope, head, now) for session in sessions)
    out = Outcome(violations=_behind(head, now))
    if out.violations:
        return out
    accounts = await accounts_of(one.session, scope)
    out.accounts = len(accounts)

    async def by_account() -> list[Violation]:
        touched = await _balances(one, accounts, state, out)
        return await _lots(one, [a for a in accounts.values() if a.id in touched], state)

    async def by_row() -> list[Violation]:
        found = await _history(two) + await _double_entry(two) + await _events(two)
        return found + await duplicate_keys(two.session, scope, new_after=head.transaction_horizon)

    for found in await asyncio.gather(by_account(), by_row()):
        out.violations += found
    brand = "" if scope.brand_id is None else f" AND t.brand_id = {int(scope.brand_id)}"
    (row,) = await one.session.rows(
        f"SELECT COUNT(*) FROM ledger_transaction t WHERE {one.new('t.id', 'transaction')}{brand}"
    )
    out.transactions = head.transactions + int(row[0])
    return out


def _behind(head: CheckpointRow, now: Horizons) -> list[Violation]:
    """Ids only grow: a table whose largest id is below the checkpoint's horizon lost rows."""
    names = ("posting", "transaction", "lot", "lot allocation", "outbox event")
    return [
        Violation(
            "HISTORY_CHANGED", f"{name} ids", f"the largest is {mine}, below checkpoint {head.id}'s {was}"
        )
        for name, mine, was in zip(names, astuple(now), astuple(head.horizons), strict=True)
        if mine < was
    ]


async def _balances(
    since: _Since, accounts: dict[int, AccountRow], state: dict[int, tuple[int, int]], out: Outcome
) -> set[int]:
    """Every account's stored balance and sequence are the proven ones plus its new postings.

    Returns the accounts with new postings, whose states ``out`` will record.
    """
    s = since.session.sum
    rows = await since.session.rows(
        f"SELECT p.account_id, COUNT(*), {s}(p.amount), MIN(p.sequence), MAX(p.sequence),"
        f" MIN(p.balance_after) FROM posting p WHERE {since.postings} GROUP BY p.account_id"
    )
    new = {int(r[0]): [int(v) for v in r[1:]] for r in rows}
    out.postings = since.head.postings + sum(n for n, *_ in new.values())
    for a in accounts.values():
        balance, sequence = state.get(a.id, (0, 0))
        n, total, first, last, lowest = new.get(a.id, [0, 0, 0, 0, 0])
        if (a.balance, a.sequence) != (balance + total, sequence + n) or (
            n and (first, last) != (sequence + 1, a.sequence)
        ):
            detail = (
                f"stored {a.balance}/{a.sequence}, proven {balance}/{sequence} at checkpoint"
                f" {since.head.id}, new postings {total}/{n}"
            )
            out.violations.append(Violation("BALANCE_MISMATCH", f"account {a.id}", detail))
        if not a.allow_negative and (a.balance < 0 or (n and lowest < 0)):
            low = lowest if n else a.balance
            detail = f"balance {a.balance}, lowest {low}"
            out.violations.append(Violation("NEGATIVE_BALANCE", f"account {a.id}", detail))
        if n:
            out.states.append((a.id, a.balance, a.sequence))
    for gone in state.keys() - accounts.keys():
        detail = "proven at the checkpoint, now missing"
        out.violations.append(Violation("BALANCE_MISMATCH", f"account {gone}", detail))
    return set(new)


async def _history(since: _Since) -> list[Violation]:
    """Each new posting follows the one before it, or the proven state for an account's first one."""
    rows = await since.session.rows(
        HISTORY_SQL.format(where=since.postings)
        + f" LEFT JOIN audit_account_state v ON v.scope = '{since.scope.name}'"
        " AND v.account_id = x.account_id"
        " WHERE x.sequence <> COALESCE(x.previous_sequence, v.sequence, 0) + 1"
        " OR x.balance_after - x.amount <> COALESCE(x.previous_balance, v.balance, 0)"
    )
    return [Violation("BROKEN_HISTORY", *history_shape(r)) for r in rows]


async def _double_entry(since: _Since) -> list[Violation]:
    """Every new transaction, and every transaction with a new posting, balances per book, and its
    settlement between partners is mirrored."""
    s = since.session.sum
    transactions = (
        f"SELECT p.transaction_id FROM posting p WHERE {since.postings}"
        f" UNION SELECT t.id FROM ledger_transaction t WHERE {since.new('t.id', 'transaction')}"
    )
    rows = await since.session.rows(
        f"SELECT p.transaction_id, a.brand_id, a.asset, a.asset_code, {s}(p.amount) FROM posting p"
        f" JOIN account a ON a.id = p.account_id WHERE p.transaction_id IN ({transactions})"
        f" AND {since.scope.accounts()} GROUP BY p.transaction_id, a.brand_id, a.asset, a.asset_code"
        f" HAVING {s}(p.amount) <> 0"
    )
    found = [
        Violation(
            "UNBALANCED_TRANSACTION",
            f"transaction {r[0]}",
            f"brand {r[1]} {book_name(r[2], r[3])} sums to {r[4]}",
        )
        for r in rows
    ]
    rows = await since.session.rows(unmirrored_settlements(since.scope, s, transactions))
    return found + [Violation("SETTLEMENT_NOT_MIRRORED", *settlement_shape(r)) for r in rows]


async def _lots(
    since: _Since, touched: list[AccountRow], state: dict[int, tuple[int, int]]
) -> list[Violation]:
    """Lots of accounts with new postings, new lots, lots that new allocations drew from, and the
    lots and allocations of new credits and debits."""
    session, s, scope, found = since.session, since.session.sum, since.scope, []
    new_lots, new_allocations = since.new("l.id", "lot"), since.new("la.id", "allocation")
    touched_lots = (
        f"l.id IN (SELECT l.id FROM lot l WHERE {new_lots} UNION SELECT la.lot_id FROM lot_allocation la"
        f" WHERE {new_allocations}) AND {scope.account_ids('l.account_id')}"
    )
    # At the checkpoint an account's lots held its proven balance, each lot its amount less what the
    # allocations up to then drew. Lots nothing new refers to hold the same now, so the lots gained
    # what the touched ones hold now less what they held then. This reads only rows that new rows
    # refer to, however many open lots the account has.
    lot_accounts = {
        a.id: a.balance - state.get(a.id, (0, 0))[0] for a in touched if keeps_lots(a.asset, a.kind)
    }
    if lot_accounts:
        drawn_before = (
            f"COALESCE((SELECT {s}(la.amount) FROM lot_allocation la WHERE la.lot_id = l.id"
            f" AND la.id <= {int(since.head.allocation_horizon)}), 0)"
        )
        held_before = (
            f"CASE WHEN l.id > {int(since.head.lot_horizon)} THEN 0 ELSE l.amount - {drawn_before} END"
        )
        rows = await session.rows(
            f"SELECT l.account_id, {s}(l.remaining - ({held_before})) FROM lot l WHERE {touched_lots}"
            f" AND l.account_id IN ({id_list(set(lot_accounts))}) GROUP BY l.account_id"
        )
        gained = {int(r[0]): int(r[1]) for r in rows}
        for account_id, change in sorted(lot_accounts.items()):
            if change != gained.get(account_id, 0):
                detail = (
                    f"balance changed by {change} since the checkpoint, lots by {gained.get(account_id, 0)}"
                )
                found.append(Violation("LOTS_MISMATCH", f"account {account_id}", detail))

    rows = await session.rows(
        LOTS_SQL.format(s=s, where=touched_lots)
        + " WHERE x.remaining <> x.amount - x.allocated OR x.remaining < 0 OR x.remaining > x.amount"
    )
    found += [Violation("LOT_ALLOCATION_MISMATCH", *lot_shape(r)) for r in rows]

    # A transaction's credits on a lot account equal its lots there; its debits, what it drew.
    new_lot_postings = f"{since.postings} AND {LOT_ACCOUNTS_SQL}"
    rows = await session.rows(
        f"SELECT x.transaction_id, x.account_id, {s}(x.credit), {s}(x.lots) FROM ("
        f"SELECT p.transaction_id, p.account_id, p.amount AS credit, 0 AS lots FROM posting p"
        f" JOIN account a ON a.id = p.account_id WHERE {new_lot_postings} AND p.amount > 0"
        f" UNION ALL SELECT l.transaction_id, l.account_id, 0, l.amount FROM lot l WHERE {new_lots}"
        f" AND {scope.account_ids('l.account_id')}) x GROUP BY x.transaction_id, x.account_id"
        f" HAVING {s}(x.credit) <> {s}(x.lots)"
    )
    found += [
        Violation("CREDIT_WITHOUT_LOT", f"transaction {r[0]}, account {r[1]}", f"credits {r[2]}, lots {r[3]}")
        for r in rows
    ]
    rows = await session.rows(
        f"SELECT x.transaction_id, x.account_id, {s}(x.debit), {s}(x.drawn) FROM ("
        f"SELECT p.transaction_id, p.account_id, -p.amount AS debit, 0 AS drawn FROM posting p"
        f" JOIN account a ON a.id = p.account_id WHERE {new_lot_postings} AND p.amount < 0"
        f" UNION ALL SELECT la.transaction_id, l.account_id, 0, la.amount FROM lot_allocation la"
        f" JOIN lot l ON l.id = la.lot_id WHERE {new_allocations} AND {scope.account_ids('l.account_id')}) x"
        f" GROUP BY x.transaction_id, x.account_id HAVING {s}(x.debit) <> {s}(x.drawn)"
    )
    found += [
        Violation(
            "DEBIT_NOT_ALLOCATED", f"transaction {r[0]}, account {r[1]}", f"debits {r[2]}, allocated {r[3]}"
        )
        for r in rows
    ]
    return found


async def _events(since: _Since) -> list[Violation]:
    """New postings that should announce themselves have an outbox event, and new events a posting."""
    missing = await since.session.rows(MISSING_EVENTS_SQL.format(where=since.postings))
    new_events = f"{since.new('o.id', 'outbox')} AND {since.scope.account_ids('o.account_id')}"
    orphans = await since.session.rows(ORPHAN_EVENTS_SQL.format(where=new_events))
    return [Violation("MISSING_OUTBOX_EVENT", *missing_shape(r)) for r in missing] + [
        Violation("OUTBOX_EVENT_WITHOUT_POSTING", *orphan_shape(r)) for r in orphans
    ]
